import { BOOLEAN, DID_KEY, strictObject } from './common.ts'

/**
 * `POST /api/ledger/forgive` (coordination fees, SPEC §10; architect only): the relay serves
 * the beneficiary `did` again — its cut-off lifted and its debt forgiven, kept across restarts.
 */
export const ledgerForgiveBodySchema = strictObject({ did: DID_KEY }, ['did'])

export const ledgerForgivenSchema = strictObject(
  {
    did: DID_KEY,
    /** Whether it was cut off (false: only its debt was forgiven). */
    wasCutOff: BOOLEAN,
  },
  ['did', 'wasCutOff'],
)
