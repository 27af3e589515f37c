/**
 * Human acts: the gate every act passes before this node carries it out or believes a
 * peer mesh did (UCAN chains, and the interim signed acts), with the one post-check
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
  isInterimAct,
  type PeerHumanActCheck,
} from './act-gate.ts'
export {
  decodeAct,
  encodeAct,
  HUMAN_ACT_LIMITS,
  HUMAN_ACT_MAX_SKEW_MS,
  HUMAN_ACTS,
  type HumanAct,
  type HumanActFields,
  HumanActVerifier,
  type HumanActVerifierInit,
  humanActSchema,
  type KnownHumanAct,
  type SignActOptions,
  signAct,
  type VerifyActOptions,
} from './human-act.ts'
