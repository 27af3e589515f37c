import { LedgerBook, RelayFees } from '../ledger/index.ts'
import type { NodeWiring } from './parts.ts'

/**
 * Coordination fees (SPEC §10): as a beneficiary, the node signs receipts for what relays
 * carry for it and sends them over `/mesh/receipts/1.0.0`; as a relay (`--relay`), it takes
 * them into its ledger (the store's `ledger` sublevel) and cuts off a beneficiary past the
 * free allowance without receipts. It follows the libp2p host across a key rotation
 * (node/network.ts restartOnKey): the byte counts start again with the new host.
 */
export async function startLedger({ parts, init, logger }: NodeWiring): Promise<RelayFees> {
  const fees = new RelayFees(
    {
      libp2p: () => parts.get('libp2p'),
      key: () => parts.get('key'),
      book: new LedgerBook(parts.get('store').sublevel('ledger')),
      logger: logger.child({ area: 'ledger' }),
    },
    init.fees ?? {},
  )
  return parts.add('fees', fees)
}
