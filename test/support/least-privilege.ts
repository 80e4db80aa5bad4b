// The least-privilege check the tests that run the agent through its whole life end with: under the
// manifest's RBAC (test/support/k8s/rbac.ts), the agent's identity was refused nothing (the manifest
// lacks no permission it needs) and used every permission its roles grant (the manifest grants
// nothing it does not need). A failure names the refusals and the unused grants and lists what the
// agent did use.
import { expect } from 'vitest';
import { describeLeastPrivilege, type LeastPrivilegeReport } from './k8s/rbac.ts';

export function expectLeastPrivilege(report: LeastPrivilegeReport): void {
  const detail = describeLeastPrivilege(report);
  expect(report.denied, detail).toEqual({});
  expect(report.unused, detail).toEqual([]);
  expect(report.used, detail).toEqual([...report.granted].sort());
}
