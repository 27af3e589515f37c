import { Badge, Stack, Table, Text, Title } from '@mantine/core'
import type { LedgerView } from '../../../api/index.ts'
import { usePoll } from '../lib/hooks.ts'
import { useSession } from '../lib/session.tsx'
import { EmptyState, ErrorState, Loading, ShortDid, When } from './common.tsx'
import { DataTable } from './DataTable.tsx'

/** Bytes as a person reads them. */
export function bytesText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`
}

/**
 * Coordination fees (SPEC §10): `GET /api/ledger`. As a relay, each beneficiary — the bytes
 * its circuits carried, the receipts it signed for them, whether they verify, and a cut-off
 * with its code; as a beneficiary, each relay that carried this mesh's traffic.
 */
export function LedgerPanel() {
  const session = useSession()
  const ledger = usePoll(() => session.call('ledger'), 5000, [session])
  if (ledger.data === undefined)
    return ledger.error !== undefined ? (
      <ErrorState error={ledger.error} />
    ) : (
      <Loading label="Loading the ledger…" />
    )
  const view: LedgerView = ledger.data
  return (
    <Stack>
      {ledger.error !== undefined && <ErrorState error={ledger.error} title="Could not refresh" />}
      <Text size="sm" c="dimmed">
        {view.relaying
          ? `This mesh relays; a mesh may leave ${bytesText(view.freeBytes)} unreceipted before it is cut off.`
          : 'This mesh does not relay (mesh start --relay).'}{' '}
        {view.signing
          ? 'It signs receipts for the relays it uses.'
          : 'It signs no receipts for the relays it uses.'}
      </Text>
      <Title order={3} size="h4">
        Beneficiaries
      </Title>
      {view.beneficiaries.length === 0 ? (
        <EmptyState>No mesh's traffic crossed this relay.</EmptyState>
      ) : (
        <DataTable
          scroll
          striped
          aria-label="Beneficiaries of this relay"
          columns={[
            'Mesh',
            'Measured',
            'Receipted',
            'Receipts',
            'Unreceipted',
            'Refused',
            'Verified',
            'Served',
          ]}
        >
          {view.beneficiaries.map((b) => (
            <Table.Tr key={b.did} data-testid="ledger-beneficiary">
              <Table.Td>
                <ShortDid did={b.did} />
              </Table.Td>
              <Table.Td>{bytesText(b.measuredBytes)}</Table.Td>
              <Table.Td>{bytesText(b.receiptedBytes)}</Table.Td>
              <Table.Td>
                {b.receipts} (seq {b.lastSeq})
              </Table.Td>
              <Table.Td>{bytesText(b.unreceiptedBytes)}</Table.Td>
              <Table.Td>{b.refused}</Table.Td>
              <Table.Td>
                <Badge color={b.verified ? 'green' : 'red'} variant="light">
                  {b.verified ? 'verified' : 'does not verify'}
                </Badge>
              </Table.Td>
              <Table.Td>
                {b.cutOff === null ? (
                  <Badge color="green" variant="light">
                    served
                  </Badge>
                ) : (
                  <Stack gap={0}>
                    <Badge color="red" variant="light">
                      cut off: {b.cutOff.code}
                    </Badge>
                    <When value={b.cutOff.at} />
                  </Stack>
                )}
              </Table.Td>
            </Table.Tr>
          ))}
        </DataTable>
      )}
      <Title order={3} size="h4">
        Relays this mesh used
      </Title>
      {view.relays.length === 0 ? (
        <EmptyState>No relay carried this mesh's traffic.</EmptyState>
      ) : (
        <DataTable
          scroll
          striped
          aria-label="Relays that carried this mesh's traffic"
          columns={['Relay', 'Measured', 'Receipted', 'Receipts', 'Last refusal']}
        >
          {view.relays.map((r) => (
            <Table.Tr key={r.did} data-testid="ledger-relay">
              <Table.Td>
                <ShortDid did={r.did} />
              </Table.Td>
              <Table.Td>{bytesText(r.measuredBytes)}</Table.Td>
              <Table.Td>{bytesText(r.receiptedBytes)}</Table.Td>
              <Table.Td>
                {r.receipts} (seq {r.lastSeq})
              </Table.Td>
              <Table.Td>{r.lastError ?? '—'}</Table.Td>
            </Table.Tr>
          ))}
        </DataTable>
      )}
    </Stack>
  )
}
