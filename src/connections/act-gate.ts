// moved to src/auth/acts; removed at merge (room-sync.ts still imports this path)
export * from '../auth/acts/act-gate.ts'
