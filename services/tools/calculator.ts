import jsep from 'jsep';
import { ToolError, type ToolDefinition } from './types';

const MAX_EXPRESSION = 500;
const MAX_DEPTH = 64;

const BINARY: Readonly<Record<string, (a: number, b: number) => number>> = {
  '+': (a, b) => a + b,
  '-': (a, b) => a - b,
  '*': (a, b) => a * b,
  '/': (a, b) => a / b,
  '%': (a, b) => a % b,
  '**': (a, b) => a ** b,
};

const UNARY: Readonly<Record<string, (a: number) => number>> = {
  '-': (a) => -a,
  '+': (a) => a,
};

const CONSTANTS: Readonly<Record<string, number>> = { pi: Math.PI, e: Math.E };

/** Functions by name with their arity ([min, max]). Looked up in a plain object, never on Math. */
const FUNCTIONS: Readonly<
  Record<string, { arity: [number, number]; fn: (...x: number[]) => number }>
> = {
  sqrt: { arity: [1, 1], fn: Math.sqrt },
  cbrt: { arity: [1, 1], fn: Math.cbrt },
  abs: { arity: [1, 1], fn: Math.abs },
  floor: { arity: [1, 1], fn: Math.floor },
  ceil: { arity: [1, 1], fn: Math.ceil },
  round: { arity: [1, 1], fn: Math.round },
  trunc: { arity: [1, 1], fn: Math.trunc },
  sign: { arity: [1, 1], fn: Math.sign },
  exp: { arity: [1, 1], fn: Math.exp },
  ln: { arity: [1, 1], fn: Math.log },
  log: {
    arity: [1, 2],
    fn: (x, base) => (base === undefined ? Math.log10(x) : Math.log(x) / Math.log(base)),
  },
  log2: { arity: [1, 1], fn: Math.log2 },
  log10: { arity: [1, 1], fn: Math.log10 },
  sin: { arity: [1, 1], fn: Math.sin },
  cos: { arity: [1, 1], fn: Math.cos },
  tan: { arity: [1, 1], fn: Math.tan },
  asin: { arity: [1, 1], fn: Math.asin },
  acos: { arity: [1, 1], fn: Math.acos },
  atan: { arity: [1, 1], fn: Math.atan },
  atan2: { arity: [2, 2], fn: Math.atan2 },
  pow: { arity: [2, 2], fn: Math.pow },
  min: { arity: [1, 32], fn: Math.min },
  max: { arity: [1, 32], fn: Math.max },
  hypot: { arity: [1, 32], fn: Math.hypot },
};

function own<T>(table: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.prototype.hasOwnProperty.call(table, key) ? table[key] : undefined;
}

function evaluateNode(node: jsep.Expression, depth: number): number {
  if (depth > MAX_DEPTH) throw new ToolError('Expression is nested too deeply.');
  switch (node.type) {
    case 'Literal': {
      const { value, raw } = node as jsep.Literal;
      if (typeof value !== 'number') throw new ToolError(`Only numbers are allowed, not ${raw}.`);
      return value;
    }
    case 'Identifier': {
      const { name } = node as jsep.Identifier;
      const value = own(CONSTANTS, name.toLowerCase());
      if (value === undefined) throw new ToolError(`Unknown name "${name}". Constants: pi, e.`);
      return value;
    }
    case 'UnaryExpression': {
      const { operator, argument } = node as jsep.UnaryExpression;
      const op = own(UNARY, operator);
      if (!op) throw new ToolError(`Operator "${operator}" is not supported.`);
      return op(evaluateNode(argument, depth + 1));
    }
    case 'BinaryExpression': {
      const { operator, left, right } = node as jsep.BinaryExpression;
      const op = own(BINARY, operator);
      if (!op) {
        const hint = operator === '^' ? ' Use ** or pow(a, b) for powers.' : '';
        throw new ToolError(`Operator "${operator}" is not supported.${hint}`);
      }
      return op(evaluateNode(left, depth + 1), evaluateNode(right, depth + 1));
    }
    case 'CallExpression': {
      const { callee, arguments: args } = node as jsep.CallExpression;
      const name = callee.type === 'Identifier' ? (callee as jsep.Identifier).name : '';
      const fn = own(FUNCTIONS, name.toLowerCase());
      if (!fn) {
        throw new ToolError(
          `Unknown function "${name || '?'}". Functions: ${Object.keys(FUNCTIONS).join(', ')}.`,
        );
      }
      const [min, max] = fn.arity;
      if (args.length < min || args.length > max) {
        throw new ToolError(`${name} takes ${min === max ? min : `${min} to ${max}`} argument(s).`);
      }
      return fn.fn(...args.map((a) => evaluateNode(a, depth + 1)));
    }
    default:
      throw new ToolError(
        `Unsupported syntax (${node.type}); use numbers, + - * / % **, parentheses and functions.`,
      );
  }
}

/**
 * Evaluates an arithmetic expression by parsing it with jsep and walking the syntax tree with
 * a whitelist of operators, constants and functions. Nothing is ever handed to eval or
 * Function, and member access, strings, arrays and assignments are refused.
 * @throws ToolError with a message the model can act on (syntax error, unknown name, not finite).
 */
export function evaluateExpression(expression: string): number {
  if (expression.length > MAX_EXPRESSION) {
    throw new ToolError(`Expression is longer than ${MAX_EXPRESSION} characters.`);
  }
  // jsep keeps its operator table globally; adding `**` is idempotent and changes nothing else.
  if (jsep.binary_ops['**'] === undefined) jsep.addBinaryOp('**', 11, true);
  let ast: jsep.Expression;
  try {
    ast = jsep(expression);
  } catch (err) {
    throw new ToolError(`Syntax error: ${(err as Error).message}`, { cause: err });
  }
  const value = evaluateNode(ast, 0);
  if (!Number.isFinite(value)) throw new ToolError('The result is not a finite number.');
  return value;
}

/** `calculator`: evaluates arithmetic exactly as written (no eval; see {@link evaluateExpression}). */
export function createCalculatorTool(): ToolDefinition {
  return {
    name: 'calculator',
    description:
      'Evaluates an arithmetic expression: numbers, + - * / % ** and parentheses, constants pi and e, and functions sqrt, abs, round, floor, ceil, min, max, pow, log, ln, exp, sin, cos, tan.',
    parameters: {
      type: 'object',
      properties: {
        expression: {
          type: 'string',
          minLength: 1,
          maxLength: MAX_EXPRESSION,
          description: 'The expression, e.g. "(17 + 25) * 2" or "sqrt(2) ** 2".',
        },
      },
      required: ['expression'],
      additionalProperties: false,
    },
    idempotent: true,
    timeoutMs: 1000,
    async run(args) {
      const expression = String(args.expression);
      return { expression, result: evaluateExpression(expression) };
    },
  };
}
