/**
 * Store and forward (SPEC §10): `/mesh/mailbox/1.0.0`. A relay keeps items for meshes that
 * asked it for a mailbox while they are away — sealed to the recipient's key, signed by their
 * origin, within a quota and a TTL — and the recipient takes each once when it returns.
 */
export {
  MailboxClient,
  type MailboxClientComponents,
  type MailboxClientInit,
  type MailboxDelivery,
  relayOf,
} from './client.ts'
export {
  checkMailboxItem,
  createMailboxItem,
  MAX_MAILBOX_PLAINTEXT,
  type MailboxItem,
  mailboxItemBytes,
  openMailboxItem,
} from './item.ts'
export { MAILBOX_DEFAULTS, type MailboxLimits, MailboxStore, type StoredItem } from './mailbox-store.ts'
export {
  MailboxRelay,
  type MailboxRelayComponents,
  type MailboxRelayInit,
  MESH_MAILBOX_PROTOCOL,
} from './relay.ts'
export { open, SEALED_OVERHEAD, seal } from './sealed.ts'
