/**
 * Keys: the mesh's own key history and its rotation (`mesh key rotate`). Records and
 * chains live in identity/rotation.ts, their files in identity/key-history.ts; the
 * composition root restarts what runs on the key. This module names what their HTTP
 * routes (src/http/routes/keys.ts) show.
 */
export type { KeyRotationResult, KeysView } from './views.ts'
