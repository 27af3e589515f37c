// y-leveldb 0.2 ships types its package.json "exports" hides: what the rooms benchmarks use.
declare module 'y-leveldb' {
  export class LeveldbPersistence {
    constructor(location: string, options?: object)
    storeUpdate(docName: string, update: Uint8Array): Promise<number>
    getYDoc(docName: string): Promise<import('yjs').Doc>
    destroy(): Promise<void>
  }
}
