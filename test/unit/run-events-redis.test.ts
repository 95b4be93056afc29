import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import {
  createRunStreamReader,
  eventsOf,
  storedData,
} from '../../services/agents/run-events-redis';
import type { RedisClient, RedisReply } from '../../services/stores';
import { createManualClock } from '../support/manual-clock';

describe('run events in Redis streams (services/agents/run-events-redis)', () => {
  it('stores an event’s data without the run id and seq its entry carries, and reads it back whole', () => {
    const data = { run_id: 'run_1', seq: 7, text: 'Hel', nested: { a: [1, 2] } };
    const stored = storedData(data);
    assert.deepEqual(JSON.parse(stored), { text: 'Hel', nested: { a: [1, 2] } });
    assert.deepEqual(eventsOf('run_1', [['7-0', ['t', 'message.delta', 'd', stored]]]), [
      { seq: 7, type: 'message.delta', data },
    ]);
  });

  it('reads entries in order and skips what is not an entry', () => {
    const events = eventsOf('run_2', [
      ['1-0', ['t', 'run.created', 'd', '{"status":"queued"}']],
      'not an entry',
      [3, ['t', 'x']],
      ['2-0', ['d', '{}', 't', 'run.in_progress']],
    ]);
    assert.deepEqual(
      events.map((e) => [e.seq, e.type, e.data]),
      [
        [1, 'run.created', { run_id: 'run_2', seq: 1, status: 'queued' }],
        [2, 'run.in_progress', { run_id: 'run_2', seq: 2 }],
      ],
    );
    assert.deepEqual(eventsOf('run_2', null), []);
  });
});

/** A connection of the fake: answers CLIENT ID, holds each XREAD until the test answers it. */
class FakeClient extends EventEmitter {
  isReady = true;
  isOpen = true;
  readonly commands: string[][] = [];
  private read: { resolve: (reply: RedisReply) => void; reject: (err: Error) => void } | undefined;

  constructor(readonly id: number) {
    super();
  }

  sendCommand(args: string[]): Promise<RedisReply> {
    this.commands.push(args);
    if (args[0] === 'CLIENT') return Promise.resolve(this.id);
    return new Promise((resolve, reject) => (this.read = { resolve, reject }));
  }

  /** Answers the XREAD under way. */
  answer(reply: RedisReply): void {
    const read = this.read;
    this.read = undefined;
    read?.resolve(reply);
  }

  reads(): string[][] {
    return this.commands.filter((c) => c[0] === 'XREAD');
  }

  destroy(): void {
    this.isOpen = false;
    this.isReady = false;
    this.read?.reject(new Error('closed'));
  }
}

function fakeRedis() {
  const clients: FakeClient[] = [];
  const unblocked: string[] = [];
  let hold: Promise<void> | undefined;
  const redis = {
    duplicate: async () => {
      await hold;
      const client = new FakeClient(clients.length + 7);
      clients.push(client);
      return client as unknown as RedisClient;
    },
    send: (args: readonly string[]) => {
      // CLIENT UNBLOCK <id>: the blocked XREAD returns empty, as Redis' does.
      unblocked.push(args[2]!);
      clients.find((c) => String(c.id) === args[2])?.answer(null);
      return Promise.resolve(1 as RedisReply);
    },
    commandOptions: () => ({ timeout: 1000 }),
  };
  return {
    redis,
    clients,
    unblocked,
    /** Holds the next connections until the returned function is called. */
    holdConnections(): () => void {
      let release = (): void => undefined;
      hold = new Promise((resolve) => (release = resolve));
      return () => {
        hold = undefined;
        release();
      };
    },
  };
}

const settle = async () => {
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
};

function readerOver(fake: ReturnType<typeof fakeRedis>) {
  return createRunStreamReader({
    redis: fake.redis,
    clock: createManualClock(),
    blockMs: 5000,
    eventsKey: (id) => `ev:${id}`,
    runIdOf: (key) => key.slice(3),
  });
}

const entry = (seq: number, text: string) => [
  `${seq}-0`,
  ['t', 'message.delta', 'd', JSON.stringify({ text })],
];

describe('the run stream reader (services/agents/run-events-redis)', () => {
  it('reads a followed run’s stream after what each follower had, and hands on only what is new to it', async () => {
    const fake = fakeRedis();
    const reader = readerOver(fake);
    const got: Array<[string, number]> = [];
    reader.follow('run_1', { seq: 2, onEvent: (e) => got.push(['a', e.seq]) });
    await settle();
    const [client] = fake.clients;
    assert.deepEqual(client!.reads().at(-1), [
      'XREAD',
      'COUNT',
      '1000',
      'BLOCK',
      '5000',
      'STREAMS',
      'ev:run_1',
      '2-0',
    ]);
    client!.answer({ 'ev:run_1': [entry(3, 'a'), entry(4, 'b')] } as unknown as RedisReply);
    await settle();
    assert.deepEqual(got, [
      ['a', 3],
      ['a', 4],
    ]);
    // The next read goes on after the last event delivered.
    assert.deepEqual(client!.reads().at(-1)?.slice(-1), ['4-0']);
    reader.close();
  });

  it('wakes its blocked read when a follower joins, and then reads that run too', async () => {
    const fake = fakeRedis();
    const reader = readerOver(fake);
    reader.follow('run_1', { seq: 0, onEvent: () => undefined });
    await settle();
    reader.follow('run_2', { seq: 5, onEvent: () => undefined });
    await settle();
    const [client] = fake.clients;
    assert.deepEqual(fake.unblocked, [String(client!.id)]);
    assert.deepEqual(client!.reads().at(-1)?.slice(-4), ['ev:run_1', 'ev:run_2', '0-0', '5-0']);
    reader.close();
  });

  it('stops reading when its followers are gone or it is stopped, and reads again through a new connection after close and connect', async () => {
    const fake = fakeRedis();
    const reader = readerOver(fake);
    const unfollow = reader.follow('run_1', { seq: 0, onEvent: () => undefined });
    await settle();
    unfollow();
    fake.clients[0]!.answer(null);
    await settle();
    assert.equal(fake.clients[0]!.reads().length, 1, 'no follower: no more reads');

    reader.follow('run_1', { seq: 0, onEvent: () => undefined });
    await settle();
    reader.stop();
    fake.clients[0]!.answer(null);
    await settle();
    assert.equal(fake.clients[0]!.reads().length, 2, 'stopped: the read under way was the last');

    reader.close();
    assert.equal(fake.clients[0]!.isOpen, false);
    reader.connect();
    const got: number[] = [];
    reader.follow('run_1', { seq: 0, onEvent: (e) => got.push(e.seq) });
    await settle();
    assert.equal(fake.clients.length, 2, 'a new connection');
    fake.clients[1]!.answer({ 'ev:run_1': [entry(1, 'x')] } as unknown as RedisReply);
    await settle();
    assert.deepEqual(got, [1]);
    reader.close();
  });

  it('closes a connection that was still being made when it closed', async () => {
    const fake = fakeRedis();
    const reader = readerOver(fake);
    const release = fake.holdConnections();
    reader.connect();
    reader.close();
    release();
    await settle();
    assert.equal(fake.clients.length, 1);
    assert.equal(fake.clients[0]!.isOpen, false);
  });
});
