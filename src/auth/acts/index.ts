/**
 * Human acts: the gate every act passes before this node carries it out or believes a
 * peer mesh did (every act is a UCAN chain), with the one post-check
 * of a peer's forwarded chain (`peerHumanAct`) and `withAct`, which releases an act
 * whose effect failed. Connections and rooms both use it.
 */
export {
  type ActAuthority,
  ActGate,
  type ActGateInit,
  type ActPeek,
  claimedSubject,
  type GateAct,
  type PeerHumanActCheck,
} from './act-gate.ts'
export { HUMAN_ACTS, type KnownHumanAct } from './act-names.ts'
