import assert from 'node:assert/strict';
import { decideActions } from '../../services/agents/pause';
import type { ActionCall } from '../../services/agents/types';
import { AppError } from '../../src/errors';

const awaiting: ActionCall[] = [
  { id: 'call_1', name: 'lookup', arguments: {}, type: 'client' },
  { id: 'call_2', name: 'delete_file', arguments: { path: 'x' }, type: 'approval' },
];

describe('decideActions (services/agents/pause)', () => {
  it('takes an output for each client call and a decision for each approval', () => {
    const decisions = decideActions(
      { awaiting },
      {
        tool_outputs: [{ tool_call_id: 'call_1', output: '{"t":3}' }],
        approvals: [{ tool_call_id: 'call_2', approve: false }],
      },
    );
    assert.deepEqual(
      [...decisions],
      [
        ['call_1', { kind: 'output', output: '{"t":3}' }],
        ['call_2', { kind: 'denied', reason: 'The user did not approve it.' }],
      ],
    );
    const approved = decideActions(
      { awaiting: [awaiting[1]!] },
      { approvals: [{ tool_call_id: 'call_2', approve: true }] },
    );
    assert.deepEqual(approved.get('call_2'), { kind: 'approved' });
  });

  describe('when an answer does not fit what the pause waits on', () => {
    const rows: Array<[string, Parameters<typeof decideActions>[1], string[]]> = [
      [
        'a call the pause does not wait on',
        {
          tool_outputs: [
            { tool_call_id: 'call_1', output: 'a' },
            { tool_call_id: 'call_9', output: 'b' },
          ],
          approvals: [{ tool_call_id: 'call_2', approve: true }],
        },
        ['call_9'],
      ],
      [
        'an output for a call that waits on an approval',
        {
          tool_outputs: [
            { tool_call_id: 'call_1', output: 'a' },
            { tool_call_id: 'call_2', output: 'b' },
          ],
        },
        ['call_2'],
      ],
      [
        'the same call answered twice',
        {
          tool_outputs: [
            { tool_call_id: 'call_1', output: 'a' },
            { tool_call_id: 'call_1', output: 'b' },
          ],
          approvals: [{ tool_call_id: 'call_2', approve: true }],
        },
        ['call_1'],
      ],
    ];
    for (const [what, answers, ids] of rows) {
      it(`refuses ${what} with TOOL_CALL_CONFLICT naming it and what the pause waits on`, () => {
        assert.throws(
          () => decideActions({ awaiting }, answers),
          (err: unknown) => {
            assert.ok(err instanceof AppError && err.code === 'TOOL_CALL_CONFLICT');
            assert.deepEqual(err.details, {
              tool_call_ids: ids,
              awaiting: [
                { id: 'call_1', name: 'lookup', type: 'client' },
                { id: 'call_2', name: 'delete_file', type: 'approval' },
              ],
            });
            return true;
          },
        );
      });
    }
  });

  it('refuses answers that leave an awaited call out, naming each one where its answer goes', () => {
    assert.throws(
      () => decideActions({ awaiting }, {}),
      (err: unknown) => {
        assert.ok(err instanceof AppError && err.code === 'VALIDATION_FAILED');
        assert.deepEqual(err.details, [
          {
            in: 'body',
            path: '/tool_outputs',
            message: 'misses the output of tool call call_1 (lookup)',
          },
          {
            in: 'body',
            path: '/approvals',
            message: 'misses the approval of tool call call_2 (delete_file)',
          },
        ]);
        return true;
      },
    );
  });
});
