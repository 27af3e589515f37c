import {
  Anchor,
  Button,
  Card,
  Center,
  Checkbox,
  Code,
  Divider,
  FileInput,
  Stack,
  Text,
  TextInput,
  Title,
} from '@mantine/core'
import { useEffect, useState } from 'react'
import type { KeyFile } from '../../../api/key-file.ts'
import { useAction } from '../lib/hooks.ts'
import { ed25519Supported, generateKey, type HumanKey, keyFromKeyFile } from '../lib/human-key.ts'
import { useSessionState } from '../lib/session.tsx'
import { ErrorState, ShortDid } from './common.tsx'

/**
 * Sign-in with the human's own Ed25519 key, held in this browser: imported from a
 * keystore file (`$MESH_KEYSTORE/<name>.json`) or made here. The node sends a
 * challenge; the browser signs `mesh-session:<mesh did>:<nonce>`; the key never
 * leaves the page.
 */
export function SignIn() {
  const { state, signIn } = useSessionState()
  const [supported, setSupported] = useState<boolean | undefined>(undefined)
  const [file, setFile] = useState<File | null>(null)
  const [key, setKey] = useState<HumanKey | undefined>(undefined)
  const [remember, setRemember] = useState(true)
  const [newName, setNewName] = useState('')
  const [download, setDownload] = useState<{ url: string; file: KeyFile } | undefined>(undefined)
  const health = state.kind === 'signed-out' ? state.health : undefined
  const bootError = state.kind === 'signed-out' ? state.error : undefined

  useEffect(() => {
    void ed25519Supported().then(setSupported)
  }, [])
  useEffect(() => () => (download !== undefined ? URL.revokeObjectURL(download.url) : undefined), [download])

  const load = useAction(async (f: File | null) => {
    setKey(undefined)
    setFile(f)
    if (f === null) return
    setKey(await keyFromKeyFile(await f.text()))
  })
  const go = useAction(async (k: HumanKey) => signIn(k, { remember }))
  const create = useAction(async () => {
    const name = newName.trim() || 'me'
    const made = await generateKey(name)
    const blob = new Blob([`${JSON.stringify(made.file, null, 2)}\n`], { type: 'application/json' })
    setDownload({ url: URL.createObjectURL(blob), file: made.file })
    setKey(made.key)
  })

  return (
    <Center mih="100vh" p="md">
      <Card withBorder shadow="sm" radius="md" p="xl" w={520} component="main">
        <Stack gap="md">
          <div>
            <Title order={1} size="h2">
              Sign in to this mesh
            </Title>
            {health !== undefined && (
              <Text size="sm" c="dimmed">
                Mesh <ShortDid did={health.did} /> · version {health.version}
              </Text>
            )}
          </div>
          {supported === false && (
            <Text c="red" role="alert">
              This browser cannot sign with Ed25519 (WebCrypto). Use a current Chromium, Firefox or Safari.
            </Text>
          )}
          {bootError !== undefined && <ErrorState error={bootError} title="Could not sign in" />}
          <Text size="sm">
            Your key stays in this browser: the node sends a challenge and the page signs it. Import your key
            file from your keystore (<Code>~/.mesh-keys/&lt;name&gt;.json</Code>), e.g. the architect key that{' '}
            <Code>mesh init</Code> wrote.
          </Text>
          <FileInput
            label="Key file"
            description="A human key file (JSON with version, type Ed25519, seed, did)"
            placeholder="Choose a key file…"
            accept="application/json,.json"
            value={file}
            onChange={(f) => void load.run(f)}
            clearable
            data-testid="key-file"
          />
          {load.error !== undefined && <ErrorState error={load.error} title="Not a usable key" />}
          {key !== undefined && (
            <Text size="sm" data-testid="key-did">
              Key <strong>{key.name}</strong>: <ShortDid did={key.did} />
            </Text>
          )}
          <Checkbox
            label="Keep this key in this browser (non-extractable) to sign in again"
            checked={remember}
            onChange={(e) => setRemember(e.currentTarget.checked)}
          />
          <Button
            onClick={() => key !== undefined && void go.run(key)}
            disabled={key === undefined}
            loading={go.busy}
          >
            Sign in
          </Button>
          {go.error !== undefined && <ErrorState error={go.error} title="Sign-in refused" />}
          <Divider label="or" />
          <TextInput
            label="Create a new key in this browser"
            description="Save the key file it gives you; an architect enrols the key before it can sign in."
            placeholder="your name, e.g. ada"
            value={newName}
            onChange={(e) => setNewName(e.currentTarget.value)}
          />
          <Button variant="light" onClick={() => void create.run()} loading={create.busy}>
            Create key
          </Button>
          {create.error !== undefined && <ErrorState error={create.error} />}
          {download !== undefined && (
            <Text size="sm">
              New key <ShortDid did={download.file.did} />.{' '}
              <Anchor href={download.url} download={`${download.file.name}.json`}>
                Save its key file
              </Anchor>{' '}
              (the only copy), then enrol it with <Code>mesh init --architect-did {download.file.did}</Code>.
            </Text>
          )}
        </Stack>
      </Card>
    </Center>
  )
}
