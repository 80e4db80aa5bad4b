// The least-privilege check the tests that run the agent through its whole life end with: under the
// manifest's RBAC (test/kit/k8s/rbac.ts), the agent's identity was refused nothing (the manifest
// lacks no permission it needs) and used every permission its roles grant (the manifest grants
// nothing it does not need). A failure names the refusals and the unused grants and lists what the
// agent did use.
import { expect } from 'vitest';
import { describeLeastPrivilege, type LeastPrivilegeReport } from '../kit/k8s/rbac.ts';

/**
 * `notExercisedHere`: accesses ("get pods") a test cannot make the agent use every time (a race it
 * does not control), each with the reason and the test that does exercise it; they may still be used.
 */
export function expectLeastPrivilege(
  report: LeastPrivilegeReport,
  opts: { notExercisedHere?: Record<string, string> } = {},
): void {
  const detail = describeLeastPrivilege(report);
  // describePermission writes "<access> (<role>, rule <n>)".
  const excused = (permission: string) => (permission.split(' (')[0] as string) in (opts.notExercisedHere ?? {});
  expect(report.denied, detail).toEqual({});
  expect(
    report.unused.filter((p) => !excused(p)),
    detail,
  ).toEqual([]);
  expect(report.used, detail).toEqual(report.granted.filter((p) => report.used.includes(p) || !excused(p)).sort());
}

/**
 * The simulator creates a Pod before its ADD, as kubelet does, so the agent gets it only when the
 * pod-start notice beats the Pod informer's event; test/integration/agent-setup.test.ts announces a
 * pod the API does not have and exercises it every time.
 */
export const POD_GET_RACE = {
  'get pods': 'only when a pod-start notice beats the Pod informer; agent-setup.test.ts exercises it',
};
