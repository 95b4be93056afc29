/**
 * A paused run: what a run in `requires_action` keeps in the RunRepository so that any replica
 * can resume it. Everything here is plain JSON (the Redis repository stores it as text).
 */
import type { GroupStrategy } from './groupthink';
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
