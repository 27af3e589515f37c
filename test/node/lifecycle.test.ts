import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createLogger } from '../../src/log.ts'
import { Lifecycle } from '../../src/node/lifecycle.ts'

interface Parts {
  a: Part
  b: Part
  c: Part
  setting: number
}

/** A part that writes what happens to it into `events`. */
class Part {
  readonly name: string
  readonly events: string[]
  readonly failOn: 'start' | 'stop' | undefined
  constructor(name: string, events: string[], failOn?: 'start' | 'stop') {
    this.name = name
    this.events = events
    this.failOn = failOn
  }
  async start(): Promise<void> {
    if (this.failOn === 'start') throw new Error(`${this.name} cannot start`)
    this.events.push(`start ${this.name}`)
  }
  async stop(): Promise<void> {
    if (this.failOn === 'stop') throw new Error(`${this.name} cannot stop`)
    this.events.push(`stop ${this.name}`)
  }
}

function lifecycle(): { life: Lifecycle<Parts>; logged: Array<{ event?: string }> } {
  const logged: Array<{ event?: string }> = []
  const logger = createLogger({
    level: 'debug',
    destination: { write: (line: string) => logged.push(JSON.parse(line)) },
  })
  return { life: new Lifecycle<Parts>({ logger }, { what: 'node' }), logged }
}

describe('Lifecycle', () => {
  it('starts parts in order and stops them in reverse, with the steps between them', async () => {
    const { life } = lifecycle()
    const events: string[] = []
    await life.start(async () => {
      await life.add('a', new Part('a', events))
      life.onStop(() => events.push('step after a'))
      await life.add('b', new Part('b', events))
      life.hold('c', new Part('c', events))
    })
    assert.equal(life.status, 'started')
    assert.equal(life.get('b').name, 'b')
    assert.equal(await life.stop(), true)
    assert.equal(life.status, 'stopped')
    assert.deepEqual(events, ['start a', 'start b', 'stop c', 'stop b', 'step after a', 'stop a'])
  })

  it('leaves nothing set after stop', async () => {
    const { life } = lifecycle()
    await life.start(async () => {
      await life.add('a', new Part('a', []))
      life.set('setting', 7)
    })
    assert.equal(life.get('setting'), 7)
    await life.stop()
    assert.equal(life.find('a'), undefined)
    assert.equal(life.find('setting'), undefined)
    assert.throws(() => life.get('a'), /node is not started \(a missing\)/)
  })

  it('stops the part a name holds at stop time, not the one first held', async () => {
    const { life } = lifecycle()
    const events: string[] = []
    await life.start(async () => {
      life.hold('a', new Part('first', events))
    })
    life.set('a', new Part('second', events))
    await life.stop()
    assert.deepEqual(events, ['stop second'])
  })

  it('unwinds what had started when a start fails, then can start again', async () => {
    const { life } = lifecycle()
    const events: string[] = []
    await assert.rejects(
      life.start(async () => {
        await life.add('a', new Part('a', events))
        await life.add('b', new Part('b', events, 'start'))
        await life.add('c', new Part('c', events))
      }),
      /b cannot start/,
    )
    assert.deepEqual(events, ['start a', 'stop a'])
    assert.equal(life.status, 'stopped')
    assert.equal(life.find('a'), undefined)
    // Stop after a failed start has nothing to do.
    assert.equal(await life.stop(), false)
    assert.deepEqual(events, ['start a', 'stop a'])
    await life.start(async () => {
      await life.add('a', new Part('a', events))
    })
    assert.equal(life.status, 'started')
    await life.stop()
    assert.deepEqual(events, ['start a', 'stop a', 'start a', 'stop a'])
  })

  it('stops once: a second stop does nothing', async () => {
    const { life } = lifecycle()
    const events: string[] = []
    await life.start(async () => {
      await life.add('a', new Part('a', events))
    })
    assert.equal(await life.stop(), true)
    assert.equal(await life.stop(), false)
    assert.deepEqual(events, ['start a', 'stop a'])
  })

  it('goes on stopping the rest when one part fails to stop, and logs it', async () => {
    const { life, logged } = lifecycle()
    const events: string[] = []
    await life.start(async () => {
      await life.add('a', new Part('a', events))
      await life.add('b', new Part('b', events, 'stop'))
    })
    await life.stop()
    assert.deepEqual(events, ['start a', 'start b', 'stop a'])
    assert.equal(logged.filter((l) => l.event === 'node.stop_failed').length, 1)
  })

  it('refuses to start what is already started', async () => {
    const { life } = lifecycle()
    await life.start(async () => {})
    await assert.rejects(
      life.start(async () => {}),
      /cannot start a node that is started/,
    )
    await life.stop()
  })
})
