/**
 * What a run request names that the request schema cannot check: the agent (a stored one by
 * name, or an inline definition held to the rules AGENTS_FILE's agents are held to) and the
 * webhook URL (the service's SSRF guard). Each problem is the request's 400.
 */
import { AppError } from '../../src/errors';
import type { Logger } from '../../src/logger';
import type { SchemaRegistry } from '../../src/validation';
import { SsrfError, type SsrfGuard } from '../net';
import type { ToolRegistry } from '../tools';
import { invalidBody } from './plan';
import { agentProblems, type AgentChecks, type AgentRegistry } from './registry';
import type { AgentDefinition } from './types';
import type { WebhookSender } from './webhooks';

/** How a run request names its agent: a stored agent's name (`default` when absent) or one inline. */
export type AgentRef = string | (Omit<AgentDefinition, 'name'> & { name?: string }) | undefined;

export interface RunChecks {
  /** @throws AppError AGENT_NOT_FOUND, VALIDATION_FAILED (an inline agent that is not valid) */
  resolveAgent(ref: AgentRef): { agent: AgentDefinition; inline: boolean };
  /** @throws AppError VALIDATION_FAILED (no WEBHOOK_SECRET, or a URL the guard refuses) */
  checkWebhook(url: string): Promise<void>;
}

export interface RunChecksDeps {
  agents: AgentRegistry;
  tools: Pick<ToolRegistry, 'names'>;
  schemas: SchemaRegistry;
  numCtx: AgentChecks['numCtx'];
  mcpServers: readonly string[];
  /** Null when WEBHOOK_SECRET is empty: runs with a webhook are then refused. */
  webhooks: WebhookSender | null;
  webhookGuard: SsrfGuard;
  logger: Pick<Logger, 'debug'>;
}

export function createRunChecks(deps: RunChecksDeps): RunChecks {
  return {
    resolveAgent(ref) {
      if (ref === undefined || typeof ref === 'string') {
        const name = ref ?? 'default';
        const agent = deps.agents.get(name);
        if (!agent) throw new AppError('AGENT_NOT_FOUND', `No agent named "${name}".`);
        return { agent, inline: false };
      }
      const agent: AgentDefinition = { ...ref, name: ref.name ?? 'inline' };
      const problems = agentProblems(agent, {
        toolNames: deps.tools.names(),
        schemas: deps.schemas,
        numCtx: deps.numCtx,
        mcpServers: deps.mcpServers,
      });
      if (problems.length > 0) {
        throw invalidBody('/agent', problems);
      }
      return { agent, inline: true };
    },

    async checkWebhook(url) {
      if (!deps.webhooks) {
        throw invalidBody('/webhook', 'is not available: the service has no WEBHOOK_SECRET');
      }
      try {
        await deps.webhookGuard.check(url);
      } catch (err) {
        if (!(err instanceof SsrfError)) throw err;
        // Whether a host resolves, and to what kind of address, stays in the log: told to the
        // caller, it would map internal names.
        if (err.reason === 'dns' || err.reason === 'address_refused') {
          deps.logger.debug('webhook URL refused', { reason: err.reason, error: err.message });
          throw invalidBody('/webhook/url', 'is refused: it is not an https URL of a public host.');
        }
        throw invalidBody('/webhook/url', `is refused: ${err.message}`);
      }
    },
  };
}
