// Every agent option is documented in the README with its default: the table there is the one
// configReference() generates from the option list itself.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configReference } from '../../src/agent/config.ts';

describe('README', () => {
  it('documents every agent option with its default', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const block = /<!-- agent-options:begin[^>]*-->\n([\s\S]*?)\n<!-- agent-options:end -->/.exec(readme);
    expect(block, 'the agent-options block in README.md').not.toBeNull();
    expect(block?.[1]).toBe(configReference());
  });
});
