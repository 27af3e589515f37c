// moved to src/auth/acts; removed at merge
export * from '../auth/acts/human-act.ts'
