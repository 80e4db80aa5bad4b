// Test network namespaces: created with a unique "stt" name, removed in teardown pass or fail.
import { existsSync } from 'node:fs';
import { testName } from './names.ts';
import { sh, trySh } from './sh.ts';

export class TestNetns {
  readonly name: string;
  readonly path: string;

  private constructor(name: string) {
    this.name = name;
    this.path = `/run/netns/${name}`;
  }

  static create(kind = 'ns'): TestNetns {
    const ns = new TestNetns(testName(kind));
    sh('ip', ['netns', 'add', ns.name]);
    sh('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up']);
    return ns;
  }

  exec(cmd: string, args: string[]): string {
    return sh('ip', ['netns', 'exec', this.name, cmd, ...args]);
  }

  tryExec(cmd: string, args: string[]) {
    return trySh('ip', ['netns', 'exec', this.name, cmd, ...args]);
  }

  get exists(): boolean {
    return existsSync(this.path);
  }

  destroy(): void {
    if (this.exists) trySh('ip', ['netns', 'del', this.name]);
  }
}
