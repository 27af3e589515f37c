import { type DestinationStream, type Logger, pino } from 'pino'

export type { Logger }

export interface LoggerInit {
  /** pino level; default 'info'. */
  level?: string
  /** Where JSON lines go; default stdout (fd 1). */
  destination?: DestinationStream
  /** Fields on every line, e.g. the mesh name. */
  base?: Record<string, unknown>
}

/**
 * JSON-lines logs. Every line has an `event` field named `area.event`
 * (`discovery.mesh_found`, `registry.heartbeat.sent`) so that logs can be grepped.
 */
export function createLogger(init: LoggerInit = {}): Logger {
  return pino(
    { level: init.level ?? 'info', base: init.base ?? {}, timestamp: pino.stdTimeFunctions.isoTime },
    init.destination ?? pino.destination({ fd: 1, sync: false }),
  )
}

/** A logger that drops everything, for library users and unit tests that do not read logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
