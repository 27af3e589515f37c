/** ucanto's result shape: exactly one of `ok` and `error`, so either can be tested directly. */
export type Result<T, E> = { ok: T; error?: undefined } | { ok?: undefined; error: E }
