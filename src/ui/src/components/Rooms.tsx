import {
  Badge,
  Button,
  Card,
  Checkbox,
  Code,
  Grid,
  Group,
  NavLink,
  Paper,
  Progress,
  ScrollArea,
  Select,
  Stack,
  Text,
  Textarea,
  TextInput,
  Title,
} from '@mantine/core'
import { type FormEvent, type KeyboardEvent, useEffect, useRef, useState } from 'react'
import type { FileAttachment, ListedRoom, RoomDetail } from '../../../api/index.ts'
import { navigate, useAction, usePath, usePoll } from '../lib/hooks.ts'
import { dmName } from '../lib/names.ts'
import { type ChatMessage, useRoomDoc } from '../lib/room-doc.ts'
// issue 14: names instead of bare dids in room headers and DM names
import { useRoomNames } from '../lib/room-names.ts'
import { useSession } from '../lib/session.tsx'
import { ACTS } from '../lib/ucan.ts'
// files in rooms (issue 18)
import { AttachmentList, AttachPicker } from './Attachments.tsx'
import {
  ActOutcome,
  EmptyState,
  ErrorState,
  FederatedBadge,
  Loading,
  ShortDid,
  StatusBadge,
  When,
} from './common.tsx'
// room lifecycle and consent (SPEC §9)
import { InvitationsCard } from './Invitations.tsx'
import { MessageBody } from './MessageBody.tsx'
import { MembersCard } from './RoomMembersCard.tsx'
import { RoomShares } from './RoomShares.tsx'
// tasks across meshes (SPEC §13)
import { TaskBoard } from './TaskBoard.tsx'

/** Rooms: the list (🌐 on federated ones), mentions, and the selected room's live chat. */
export function RoomsView() {
  const session = useSession()
  const path = usePath()
  const selected = /^\/rooms\/([A-Za-z0-9_-]{8,64})$/.exec(path)?.[1]
  const rooms = usePoll(() => session.call('listRooms'), 3000, [session])
  const names = useRoomNames(rooms.data?.rooms) // issue 14
  const [name, setName] = useState('')
  const [topic, setTopic] = useState('')
  const [inviteOnly, setInviteOnly] = useState(false)
  const create = useAction(async (e: FormEvent) => {
    e.preventDefault()
    const room = await session.call('createRoom', {
      body: {
        name: name.trim(),
        ...(topic.trim() !== '' ? { topic: topic.trim() } : {}),
        visibility: inviteOnly ? 'invite' : 'public',
      },
    })
    setName('')
    setTopic('')
    setInviteOnly(false)
    rooms.reload()
    navigate(`/rooms/${room.id}`)
  })
  const list = rooms.data?.rooms ?? []
  return (
    <Grid gap="md">
      <Grid.Col span={{ base: 12, md: 4 }}>
        <Stack>
          <Title order={2}>Rooms</Title>
          <InvitationsCard onAnswered={() => rooms.reload()} />
          {rooms.error !== undefined && <ErrorState error={rooms.error} title="Could not list rooms" />}
          {rooms.data === undefined && rooms.loading ? (
            <Loading label="Loading rooms…" />
          ) : list.length === 0 ? (
            <EmptyState>No rooms yet. Create one below, or ask a connected mesh to share one.</EmptyState>
          ) : (
            <nav aria-label="Rooms">
              {list.map((r) => (
                <NavLink
                  key={r.id}
                  href={`/rooms/${r.id}`}
                  active={r.id === selected}
                  onClick={(e) => {
                    e.preventDefault()
                    navigate(`/rooms/${r.id}`)
                  }}
                  label={
                    <Group gap={6} wrap="nowrap">
                      <Text span fw={600}>
                        # {names.roomName(r)}
                      </Text>
                      {r.federated && <FederatedBadge label="federated room" />}
                      {r.visibility === 'invite' && (
                        <Badge size="xs" variant="light" color="gray" title="members only">
                          {r.dm === true ? 'dm' : 'invite'}
                        </Badge>
                      )}
                    </Group>
                  }
                  description={r.topic || undefined}
                  data-testid="room-link"
                  data-name={r.name}
                  data-federated={r.federated}
                />
              ))}
            </nav>
          )}
          <Card
            withBorder
            component="form"
            onSubmit={(e: FormEvent) => void create.run(e)}
            aria-label="Create a room"
          >
            <Stack gap="xs">
              <TextInput
                label="Room name"
                placeholder="general"
                value={name}
                onChange={(e) => setName(e.currentTarget.value)}
                required
                maxLength={100}
              />
              <TextInput
                label="Topic"
                placeholder="optional"
                value={topic}
                onChange={(e) => setTopic(e.currentTarget.value)}
              />
              <Checkbox
                label="Invite only (hidden from everyone but its members)"
                checked={inviteOnly}
                onChange={(e) => setInviteOnly(e.currentTarget.checked)}
              />
              <Button type="submit" loading={create.busy} disabled={name.trim() === ''}>
                Create room
              </Button>
              {create.error !== undefined && <ErrorState error={create.error} />}
            </Stack>
          </Card>
          <Notifications />
        </Stack>
      </Grid.Col>
      <Grid.Col span={{ base: 12, md: 8 }}>
        {selected === undefined ? (
          <EmptyState>Choose a room to chat.</EmptyState>
        ) : (
          <RoomPane key={selected} roomId={selected} room={list.find((r) => r.id === selected)} />
        )}
      </Grid.Col>
    </Grid>
  )
}

function Notifications() {
  const session = useSession()
  const notes = usePoll(() => session.call('notifications', { query: { limit: '20' } }), 4000, [session])
  const list = notes.data?.notifications ?? []
  return (
    <Card withBorder aria-labelledby="mentions-title">
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h5" id="mentions-title">
          Mentions
        </Title>
        {list.length > 0 && <Badge aria-label={`${list.length} mentions`}>{list.length}</Badge>}
      </Group>
      {notes.error !== undefined && <ErrorState error={notes.error} />}
      {list.length === 0 ? (
        <EmptyState>Nobody mentioned you yet.</EmptyState>
      ) : (
        <Stack gap={6} data-testid="notifications">
          {list.map((n) => (
            <Paper
              key={n.id}
              p="xs"
              withBorder
              component="a"
              href={`/rooms/${n.room}`}
              onClick={(e: React.MouseEvent) => {
                e.preventDefault()
                navigate(`/rooms/${n.room}`)
              }}
            >
              <Text size="xs" c="dimmed">
                {n.author} in #{n.roomName} · <When value={n.ts} />
              </Text>
              <Text size="sm" lineClamp={2}>
                {n.body}
              </Text>
            </Paper>
          ))}
        </Stack>
      )}
    </Card>
  )
}

function RoomPane({ roomId, room }: { roomId: string; room: ListedRoom | undefined }) {
  const session = useSession()
  const params = { id: roomId }
  const detail = usePoll(() => session.call('getRoom', { params }), 5000, [session, roomId])
  const members = usePoll(() => session.call('roomMembers', { params }), 5000, [session, roomId])
  const names = useRoomNames(undefined) // issue 14
  const homeMesh = detail.data?.homeMesh ?? room?.homeMesh
  const shown = detail.data ?? room
  const title =
    shown === undefined
      ? roomId
      : shown.dm === true
        ? dmName(shown, members.data?.members, session.me.did)
        : shown.name
  // A fresh ticket per connection; the call signs in again if the session has ended.
  const doc = useRoomDoc(
    roomId,
    async (id) => (await session.call('yjsTicket', { params: { id } })).ticket,
    session.health.did,
  )
  const federated = detail.data?.federated ?? room?.federated ?? false
  const join = useAction(async () => {
    await session.call('joinRoom', { params })
    doc.reconnect()
  })

  return (
    <Stack>
      <Group justify="space-between" align="start">
        <div>
          <Group gap="xs">
            <Title order={2} data-testid="room-title">
              # {title}
            </Title>
            {federated && <FederatedBadge label="federated room" />}
          </Group>
          <Text c="dimmed" size="sm">
            {detail.data?.topic || 'no topic'} · {detail.data?.members ?? '?'} members · home mesh{' '}
            <span data-testid="room-home-mesh">
              <ShortDid did={homeMesh} name={names.meshName(homeMesh)} />
            </span>
          </Text>
        </div>
        <LinkBadge link={doc.link} synced={doc.synced} />
      </Group>
      {detail.error !== undefined && <ErrorState error={detail.error} title="Could not load the room" />}
      {doc.link.status === 'closed' && (
        <ErrorState
          title="The live link was closed"
          error={{
            name: 'ApiError',
            code:
              doc.link.code === 4403
                ? 'MESH_FORBIDDEN'
                : doc.link.code === 4401
                  ? 'MESH_UNAUTHENTICATED'
                  : `WS_${doc.link.code}`,
            message:
              doc.link.reason ||
              (doc.link.code === 4403 ? 'you are not a member of this room' : 'closed by the node'),
            status: doc.link.code,
            details: {},
          }}
        />
      )}
      {doc.link.status === 'closed' && doc.link.code === 4403 && (
        <Button onClick={() => void join.run()} loading={join.busy} w="fit-content">
          Join this room
        </Button>
      )}
      {join.error !== undefined && <ErrorState error={join.error} />}
      <Grid gap="md">
        <Grid.Col span={{ base: 12, lg: 8 }}>
          <Chat roomId={roomId} messages={doc.messages} me={session.me.did} synced={doc.synced} />
        </Grid.Col>
        <Grid.Col span={{ base: 12, lg: 4 }}>
          <Stack>
            <MembersCard
              roomId={roomId}
              members={members.data?.members}
              present={doc.present}
              error={members.error}
              onChanged={members.reload}
            />
            {session.me.role === 'architect' && (
              <ShareCard roomId={roomId} shares={detail.data?.shares ?? []} onShared={detail.reload} />
            )}
            {federated && <SyncCard roomId={roomId} />}
          </Stack>
        </Grid.Col>
      </Grid>
      {/* tasks across meshes (SPEC §13) */}
      <TaskBoard roomId={roomId} members={members.data?.members} />
    </Stack>
  )
}

function LinkBadge({ link, synced }: { link: ReturnType<typeof useRoomDoc>['link']; synced: boolean }) {
  const label =
    link.status === 'connected'
      ? synced
        ? 'live'
        : 'syncing'
      : link.status === 'closed'
        ? `closed ${link.code}`
        : link.status
  const color =
    label === 'live' ? 'green' : label === 'syncing' ? 'blue' : link.status === 'closed' ? 'red' : 'gray'
  return (
    <Badge
      color={color}
      variant="dot"
      role="status"
      aria-label={`live link: ${label}`}
      data-testid="link-status"
      data-state={label}
    >
      {label}
    </Badge>
  )
}

function Chat({
  roomId,
  messages,
  me,
  synced,
}: {
  roomId: string
  messages: ChatMessage[]
  me: string
  synced: boolean
}) {
  const session = useSession()
  const [body, setBody] = useState('')
  const [files, setFiles] = useState<FileAttachment[]>([]) // files in rooms (issue 18)
  const viewport = useRef<HTMLDivElement>(null)
  const post = useAction(async () => {
    // files in rooms (issue 18): a message of files alone is named after them
    const text = body.trim() || files.map((f) => f.name).join(', ')
    if (text === '') return
    await session.call('postMessage', {
      params: { id: roomId },
      body: { body: text, ...(files.length > 0 ? { attachments: files } : {}) },
    })
    setBody('')
    setFiles([])
  })
  // biome-ignore lint/correctness/useExhaustiveDependencies: scroll when messages arrive
  useEffect(() => {
    viewport.current?.scrollTo({ top: viewport.current.scrollHeight })
  }, [messages.length])
  const onKey = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault()
      void post.run()
    }
  }
  return (
    <Card withBorder p={0}>
      <ScrollArea h={380} viewportRef={viewport} type="auto">
        <Stack gap={4} p="sm" role="log" aria-label="Messages" aria-live="polite" data-testid="messages">
          {messages.length === 0 ? (
            <EmptyState>{synced ? 'No messages yet. Say hello.' : 'Syncing the room…'}</EmptyState>
          ) : (
            messages.map((m) => {
              const mentionsMe = m.mentions.includes(me)
              return (
                <Paper
                  key={m.id}
                  p="xs"
                  radius="sm"
                  bg={mentionsMe ? 'var(--mantine-color-yellow-light)' : undefined}
                  data-testid="message"
                  data-author={m.name}
                  data-foreign={m.foreign}
                >
                  <Group gap={6} wrap="nowrap">
                    <Text size="sm" fw={700} data-testid="author">
                      {m.name}
                    </Text>
                    {m.foreign && <FederatedBadge label="foreign participant" />}
                    <Text size="xs" c="dimmed">
                      <When value={m.ts} />
                    </Text>
                    {mentionsMe && (
                      <Badge size="xs" color="yellow">
                        mentions you
                      </Badge>
                    )}
                  </Group>
                  <Text
                    size="sm"
                    style={{ whiteSpace: 'pre-wrap', overflowWrap: 'anywhere' }}
                    data-testid="body"
                  >
                    <MessageBody body={m.body} />
                  </Text>
                  <AttachmentList files={m.attachments} /> {/* files in rooms (issue 18) */}
                  {Object.keys(m.reactions).length > 0 && (
                    <Group gap={4}>
                      {Object.entries(m.reactions).map(([emoji, n]) => (
                        <Badge key={emoji} variant="outline" size="sm">
                          {emoji} {n}
                        </Badge>
                      ))}
                    </Group>
                  )}
                </Paper>
              )
            })
          )}
        </Stack>
      </ScrollArea>
      <Stack gap={6} p="sm" style={{ borderTop: '1px solid var(--mantine-color-default-border)' }}>
        <Textarea
          label="Message"
          description="Enter sends, Shift+Enter adds a line. Mention with @name or @name:mesh."
          value={body}
          onChange={(e) => setBody(e.currentTarget.value)}
          onKeyDown={onKey}
          autosize
          minRows={1}
          maxRows={6}
          data-testid="composer"
        />
        <AttachPicker roomId={roomId} files={files} onChange={setFiles} /> {/* files in rooms (issue 18) */}
        <Group justify="flex-end">
          <Button
            onClick={() => void post.run()}
            loading={post.busy}
            disabled={body.trim() === '' && files.length === 0}
          >
            Send
          </Button>
        </Group>
        {post.error !== undefined && (
          <ErrorState error={post.error} title="Not posted" onClose={post.clear} />
        )}
      </Stack>
    </Card>
  )
}

function ShareCard({
  roomId,
  shares,
  onShared,
}: {
  roomId: string
  shares: RoomDetail['shares']
  onShared: () => void
}) {
  const session = useSession()
  const connections = usePoll(() => session.call('listConnections'), 5000, [session])
  const [peer, setPeer] = useState<string | null>(null)
  const [done, setDone] = useState<string | undefined>(undefined)
  const share = useAction(async (mesh: string) => {
    const ucan = await session.act({ can: ACTS.roomShare, room: roomId, peer: mesh })
    await session.call('shareRoom', { params: { id: roomId }, body: { mesh, ucan } })
    setDone(mesh)
    onShared()
  })
  const connected = (connections.data ?? []).filter((c) => c.status === 'accepted' || c.status === 'degraded')
  const options = connected.map((c) => ({
    value: c.peerDid,
    label: `${c.peerName ?? 'mesh'} (${c.peerDid.slice(-8)})`,
  }))
  return (
    <Card withBorder>
      <Title order={3} size="h5" mb="xs">
        Share with a connected mesh
      </Title>
      <RoomShares
        roomId={roomId}
        shares={shares}
        nameOf={(peer) => connected.find((c) => c.peerDid === peer)?.peerName ?? undefined}
        onChanged={onShared}
      />
      {connected.length === 0 ? (
        <EmptyState>No connected meshes yet (Connections → Browse).</EmptyState>
      ) : (
        <Stack gap="xs">
          <Select
            label="Mesh"
            placeholder="Choose a mesh"
            data={options}
            value={peer}
            onChange={setPeer}
            data-testid="share-mesh"
          />
          <Button
            onClick={() => peer !== null && void share.run(peer)}
            disabled={peer === null}
            loading={share.busy}
          >
            Sign and share
          </Button>
          <Text size="xs" c="dimmed">
            Your key signs a UCAN invoking <Code>{ACTS.roomShare}</Code> on this room.
          </Text>
        </Stack>
      )}
      <ActOutcome action={share} refused="Share refused" done={done !== undefined} testId="shared">
        Shared.
      </ActOutcome>
    </Card>
  )
}

function SyncCard({ roomId }: { roomId: string }) {
  const session = useSession()
  const sync = usePoll(() => session.call('roomSync', { params: { id: roomId } }), 2000, [session, roomId])
  return (
    <Card withBorder data-testid="sync">
      <Group justify="space-between" mb="xs">
        <Title order={3} size="h5">
          Catch-up
        </Title>
        {sync.data !== undefined && <StatusBadge status={sync.data.caughtUp ? 'caught up' : 'catching up'} />}
      </Group>
      {sync.error !== undefined && <ErrorState error={sync.error} />}
      {sync.data === undefined ? (
        <Loading label="Loading sync status…" />
      ) : sync.data.peers.length === 0 ? (
        <EmptyState>Not shared with any mesh.</EmptyState>
      ) : (
        <Stack gap="sm">
          {sync.data.peers.map((p) => {
            const t = p.incoming
            const pct = t.chunks > 0 ? Math.round((100 * t.chunksDone) / t.chunks) : p.caughtUp ? 100 : 0
            return (
              <div key={p.peer}>
                <Group justify="space-between" gap={4}>
                  <Text size="sm" fw={600}>
                    {p.name ?? <ShortDid did={p.peer} />}
                  </Text>
                  <StatusBadge status={p.link} />
                </Group>
                <Progress value={pct} aria-label={`catch-up from ${p.name ?? p.peer}: ${pct}%`} mt={4} />
                <Text size="xs" c="dimmed">
                  received {t.entriesDone}/{t.entries} entries in {t.chunksDone}/{t.chunks} chunks
                  {p.behind !== null && p.behind.entries > 0 ? ` · they lack ${p.behind.entries}` : ''}
                </Text>
                {p.lastError !== null && (
                  <Text size="xs" c="red">
                    <Code>{p.lastError.code}</Code> {p.lastError.message}
                  </Text>
                )}
              </div>
            )
          })}
        </Stack>
      )}
    </Card>
  )
}
