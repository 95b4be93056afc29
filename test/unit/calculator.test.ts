import assert from 'node:assert/strict';
import { createCalculatorTool, evaluateExpression } from '../../services/tools/calculator';
import { ToolError } from '../../services/tools/types';

const ctx = () => ({ signal: new AbortController().signal });

describe('calculator tool', () => {
  const rows: Array<[string, number]> = [
    ['1 + 2 * 3', 7],
    ['(1 + 2) * 3', 9],
    ['2 ** 3 ** 2', 512],
    ['-4 + 10 % 4', -2],
    ['sqrt(16) + abs(-2)', 6],
    ['max(1, 7, 3) - min(4, 2)', 5],
    ['round(pi * 100) / 100', 3.14],
    ['log(1000)', 3],
    ['pow(2, 10)', 1024],
  ];
  for (const [expression, expected] of rows) {
    it(`evaluates ${expression} = ${expected}`, () => {
      assert.equal(evaluateExpression(expression), expected);
    });
  }

  const refused: Array<[string, RegExp]> = [
    ['process.exit(1)', /Unsupported syntax|Unknown/],
    ['constructor.constructor("return 1")()', /Unsupported syntax|Unknown function/],
    ['"a" + 1', /Only numbers/],
    ['x = 1', /Unsupported|not supported|Syntax/],
    ['1 / 0', /not a finite number/],
    ['2 ^ 3', /Use \*\* or pow/],
    ['toString(1)', /Unknown function/],
    ['1 +', /Syntax error/],
    ['sqrt(1, 2)', /takes 1 argument/],
    ['[1,2]', /Unsupported syntax/],
  ];
  for (const [expression, message] of refused) {
    it(`refuses ${expression}`, () => {
      assert.throws(
        () => evaluateExpression(expression),
        (err: unknown) => {
          assert.ok(err instanceof ToolError);
          assert.match(err.message, message);
          return true;
        },
      );
    });
  }

  it('answers through the tool interface', async () => {
    assert.deepEqual(await createCalculatorTool().run({ expression: '6*7' }, ctx()), {
      expression: '6*7',
      result: 42,
    });
  });
});
