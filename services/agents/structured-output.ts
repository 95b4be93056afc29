import type { ValidateFunction } from 'ajv';
import { toFieldErrors, type FieldError } from '../../src/validation';

export type AnswerCheck = { ok: true; value: unknown } | { ok: false; problems: FieldError[] };

/** Models often wrap JSON in a Markdown fence; take what is inside when they do. */
function unfence(text: string): string {
  const m = /^\s*```(?:json)?\s*\n([\s\S]*?)\n?```\s*$/i.exec(text);
  return (m?.[1] ?? text).trim();
}

/** Parses a final answer as JSON and validates it against the requested schema. */
export function checkAnswer(text: string, validate: ValidateFunction): AnswerCheck {
  let value: unknown;
  try {
    value = JSON.parse(unfence(text));
  } catch (err) {
    return {
      ok: false,
      problems: [
        { in: 'output', path: '', message: `is not valid JSON (${(err as Error).message})` },
      ],
    };
  }
  if (validate(value)) return { ok: true, value };
  return { ok: false, problems: toFieldErrors(validate.errors ?? [], 'output') };
}

/** The instruction of the one repair call: what was wrong, in a line per problem. */
export function repairPrompt(problems: readonly FieldError[]): string {
  const list = problems.map((p) => `- ${p.path || '(answer)'} ${p.message}`).join('\n');
  return `Your answer does not match the required JSON schema:\n${list}\nReply again with only the corrected JSON object.`;
}
