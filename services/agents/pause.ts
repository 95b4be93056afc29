/**
 * A paused run: what a run in `requires_action` keeps in the RunRepository so that any replica
 * can resume it (plain JSON: the Redis repository stores it as text), and how the caller's
 * answers to a pause are taken.
 */
import { AppError } from '../../src/errors';
import type { GroupStrategy } from './groupthink';
import type { RunPlan } from './plan';
import type { PendingCall } from './tool-executor';
import type {
  ActionCall,
  AgentLimits,
  AgentOptions,
  ClientToolSpec,
  ThinkSetting,
  ToolChoice,
} from './types';

/** The run's settings a resume needs to go on exactly as the run started. */
export interface ResumePlan {
  agentLabel: string;
  model: string;
  /** Server tools the model may call, and those of them that need an approval first. */
  toolNames: string[];
  approvalTools: string[];
  clientTools: ClientToolSpec[];
  options: AgentOptions;
  limits: AgentLimits;
  streamTokens: boolean;
  think?: ThinkSetting;
  /** The response format's JSON Schema (compiled again where the run resumes). */
  formatSchema?: Record<string, unknown>;
  /** The choice for the model steps still to come (forced choices apply to the first step only). */
  toolChoice: ToolChoice;
  /** How long each pause of the run may last. */
  actionTtlMs: number;
  /** Groupthink (never with a pause: such runs have no client tools or approvals). */
  strategy?: GroupStrategy;
}

/** What the runner hands over when a run pauses: the calls of the reply it stopped at. */
export interface PauseDraft {
  /** Every call of the model reply, in call order (results go back in this order). */
  calls: PendingCall[];
  /** Results already known, by call id: server tools that ran, calls that were rejected. */
  results: Record<string, string>;
  /** The calls the run waits on, in call order. */
  awaiting: ActionCall[];
  /** The repeat detector's counts (see limits.ts). */
  repeats: Array<[string, number]>;
  /** Time the run has worked so far (its deadline counts only that, not the pauses). */
  activeMs: number;
}

/** A pause as stored. `token` names this one pause: a resume claims it by its token. */
export interface PauseState extends PauseDraft {
  token: string;
  /** ms since the epoch: after it, the pause ends the run as `action_expired`. */
  expiresAt: number;
  plan: ResumePlan;
}

/** The caller's answer to one awaited call. */
export type ActionDecision =
  { kind: 'output'; output: string } | { kind: 'approved' } | { kind: 'denied'; reason: string };

/** What a resumed run starts from: the pause and the caller's answers, by call id. */
export interface ResumePoint {
  pause: PauseState;
  decisions: ReadonlyMap<string, ActionDecision>;
}

/** What a resume needs of a plan (plain JSON, stored with each pause). */
export function resumePlanOf(plan: RunPlan): ResumePlan {
  return {
    agentLabel: plan.agentLabel,
    model: plan.model,
    toolNames: [...plan.toolNames],
    approvalTools: [...plan.approvalTools],
    clientTools: [...plan.clientTools],
    options: plan.options,
    limits: plan.limits,
    streamTokens: plan.streamTokens,
    ...(plan.think !== undefined ? { think: plan.think } : {}),
    ...(plan.format ? { formatSchema: plan.format.schema } : {}),
    toolChoice: plan.toolChoice,
    actionTtlMs: plan.actionTtlMs,
    ...(plan.strategy ? { strategy: plan.strategy } : {}),
  };
}

/** The caller's answers to a pause, as POST /agents/runs/{id}/resume carries them. */
export interface ActionAnswers {
  tool_outputs?: Array<{ tool_call_id: string; output: string }>;
  approvals?: Array<{ tool_call_id: string; approve: boolean; reason?: string }>;
}

/**
 * The caller's answers by call id, each checked against what the pause waits on.
 * @throws AppError TOOL_CALL_CONFLICT (an answer to a call the pause does not wait on, of the
 *   wrong kind, or given twice), VALIDATION_FAILED (an awaited call left unanswered)
 */
export function decideActions(
  pause: Pick<PauseState, 'awaiting'>,
  answers: ActionAnswers,
): Map<string, ActionDecision> {
  const awaited = new Map(pause.awaiting.map((c) => [c.id, c]));
  const decisions = new Map<string, ActionDecision>();
  const conflicts: string[] = [];
  const take = (id: string, type: 'client' | 'approval', decision: ActionDecision): void => {
    if (awaited.get(id)?.type !== type || decisions.has(id)) conflicts.push(id);
    else decisions.set(id, decision);
  };
  for (const o of answers.tool_outputs ?? []) {
    take(o.tool_call_id, 'client', { kind: 'output', output: o.output });
  }
  for (const a of answers.approvals ?? []) {
    take(
      a.tool_call_id,
      'approval',
      a.approve
        ? { kind: 'approved' }
        : { kind: 'denied', reason: a.reason ?? 'The user did not approve it.' },
    );
  }
  if (conflicts.length > 0) {
    throw new AppError('TOOL_CALL_CONFLICT', undefined, {
      details: {
        tool_call_ids: conflicts,
        awaiting: pause.awaiting.map((c) => ({ id: c.id, name: c.name, type: c.type })),
      },
    });
  }
  const missing = pause.awaiting.filter((c) => !decisions.has(c.id));
  if (missing.length > 0) {
    throw new AppError('VALIDATION_FAILED', undefined, {
      details: missing.map((c) => ({
        in: 'body',
        path: c.type === 'client' ? '/tool_outputs' : '/approvals',
        message: `misses ${c.type === 'client' ? 'the output' : 'the approval'} of tool call ${c.id} (${c.name})`,
      })),
    });
  }
  return decisions;
}
