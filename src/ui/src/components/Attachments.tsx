import { Anchor, Badge, Button, CloseButton, FileButton, Group, Image, Stack, Text } from '@mantine/core'
import { useEffect, useState } from 'react'
import type { FileAttachment } from '../../../api/index.ts'
import { asApiError } from '../lib/api.ts'
import { useAction } from '../lib/hooks.ts'
import { useSession } from '../lib/session.tsx'
import { ErrorState } from './common.tsx'

/**
 * Files in rooms (issue 18): attach in the composer, image previews and downloads in the
 * chat. The bytes come through the session (`GET /api/files/:cid` with its token), as
 * object URLs: an `<img src>` could not send the token.
 */

/** Types previewed inline (the node serves these inline too; SVG is not one: it may hold script). */
const PREVIEW = /^image\/(png|jpeg|gif|webp|avif)$/

function sizeText(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / (1024 * 1024)).toFixed(1)} MiB`
}

/** An object URL of the file's bytes, revoked when the component goes. */
function useFileUrl(cid: string, enabled: boolean): { url?: string; error?: unknown } {
  const session = useSession()
  const [state, setState] = useState<{ url?: string; error?: unknown }>({})
  useEffect(() => {
    if (!enabled) return
    let url: string | undefined
    let cancelled = false
    session
      .fetchFile(cid)
      .then((res) => res.blob())
      .then((blob) => {
        if (cancelled) return
        url = URL.createObjectURL(blob)
        setState({ url })
      })
      .catch((error: unknown) => !cancelled && setState({ error }))
    return () => {
      cancelled = true
      if (url !== undefined) URL.revokeObjectURL(url)
    }
  }, [cid, enabled, session])
  return state
}

function Attachment({ file }: { file: FileAttachment }) {
  const session = useSession()
  const preview = PREVIEW.test(file.mime)
  const { url, error } = useFileUrl(file.cid, preview)
  const download = useAction(async () => {
    const blob = await (await session.fetchFile(file.cid)).blob()
    const href = URL.createObjectURL(blob)
    const a = document.createElement('a')
    a.href = href
    a.download = file.name
    a.click()
    setTimeout(() => URL.revokeObjectURL(href), 10_000)
  })
  return (
    <Stack gap={2} data-testid="attachment" data-cid={file.cid}>
      {preview && url !== undefined && (
        <Image
          src={url}
          alt={file.name}
          mah={200}
          maw={320}
          fit="contain"
          radius="sm"
          data-testid="preview"
        />
      )}
      <Group gap={6}>
        <Anchor component="button" size="sm" onClick={() => void download.run()} data-testid="download">
          📎 {file.name}
        </Anchor>
        <Text size="xs" c="dimmed">
          {sizeText(file.size)}
        </Text>
      </Group>
      {(error !== undefined || download.error !== undefined) && (
        <ErrorState
          error={error !== undefined ? asApiError(error) : (download.error ?? asApiError(undefined))}
          title="File not available"
          onClose={download.clear}
        />
      )}
    </Stack>
  )
}

/** The files a message names. */
export function AttachmentList({ files }: { files: FileAttachment[] | undefined }) {
  if (files === undefined || files.length === 0) return null
  return (
    <Stack gap={4} mt={4}>
      {files.map((f) => (
        <Attachment key={f.cid} file={f} />
      ))}
    </Stack>
  )
}

/** The composer's attach button and the files uploaded for the next message. */
export function AttachPicker({
  roomId,
  files,
  onChange,
}: {
  roomId: string
  files: FileAttachment[]
  onChange: (files: FileAttachment[]) => void
}) {
  const session = useSession()
  const upload = useAction(async (picked: File[]) => {
    const added: FileAttachment[] = []
    for (const file of picked) {
      added.push(
        await session.uploadFile(roomId, file, {
          name: file.name,
          ...(/^[\w.+-]+\/[\w.+-]+$/.test(file.type) ? { mime: file.type } : {}),
        }),
      )
    }
    onChange([...files, ...added.filter((a) => !files.some((f) => f.cid === a.cid))].slice(0, 10))
  })
  return (
    <Stack gap={4}>
      <Group gap={6}>
        <FileButton onChange={(picked) => void upload.run(picked)} multiple>
          {(props) => (
            <Button {...props} variant="default" size="xs" loading={upload.busy} data-testid="attach">
              Attach
            </Button>
          )}
        </FileButton>
        {files.map((f) => (
          <Badge
            key={f.cid}
            variant="light"
            rightSection={
              <CloseButton
                size="xs"
                aria-label={`remove ${f.name}`}
                onClick={() => onChange(files.filter((x) => x.cid !== f.cid))}
              />
            }
            data-testid="attached"
          >
            {f.name} · {sizeText(f.size)}
          </Badge>
        ))}
      </Group>
      {upload.error !== undefined && (
        <ErrorState error={upload.error} title="Not uploaded" onClose={upload.clear} />
      )}
    </Stack>
  )
}
