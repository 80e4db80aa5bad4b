// The pod-start gate: the plugin's pod-start notice is answered ok only once an apply that includes
// the pod with the notice's addresses has succeeded, within the bound the plugin waits for; else "not
// ready" (the ADD fails with try-again-later and the runtime retries): a pod a policy isolates is
// never started open (R16). A pod the informer has not shown yet is fetched by GET (the ClusterRole
// grants get on pods), so its labels decide its isolation at once.
//
// stop() refuses every waiting notice at once and ends the GETs in progress (issue 16 item 3: SIGTERM
// answers every waiting pod start).
import type { Logger } from '../../log.ts';
import type { CompiledPolicy } from '../../policy/index.ts';
import { sleep, type Clock, type Timer } from '../clock.ts';
import { ApiRequestError, describeError, type KubeClient } from '../../k8s/client.ts';
import { slimPod, type PodInfo } from '../../k8s/objects.ts';
import { type ClusterCache } from '../../k8s/cluster-cache.ts';
import { podKey, type PodStartNotices } from '../pod-notices.ts';
import type { PolicyInput } from './input.ts';

export interface PodStartGateOptions {
  cache: Pick<ClusterCache, 'pods' | 'synced' | 'unsynced'>;
  kube: Pick<KubeClient, 'request'>;
  notices: PodStartNotices;
  input: PolicyInput;
  clock: Clock;
  log: Logger;
  /** Asks the enforcer to bind the pod's notice at once (or to compile everything when it cannot);
   * `seenAt` for its latency histogram. */
  requestBind: (pod: string, seenAt: number) => void;
  /** Why the rules are not in the kernel (the applier's problem), if known. */
  problem: () => string | undefined;
  onTimeout: () => void;
}

export interface PodStartRequest {
  namespace?: string | undefined;
  name?: string | undefined;
  uid?: string | undefined;
  /** Canonical addresses. */
  ips: string[];
  containerId?: string | undefined;
  ifname?: string | undefined;
  hostVeth?: string | undefined;
}

interface Waiter {
  key: string;
  ips: string[];
  finish: (ok: boolean) => void;
}

export class PodStartGate {
  private readonly opts: PodStartGateOptions;
  private readonly waiters = new Set<Waiter>();
  private readonly fetching = new Set<string>();
  private stopped = false;

  constructor(opts: PodStartGateOptions) {
    this.opts = opts;
  }

  get waiting(): number {
    return this.waiters.size;
  }

  /** Refuses every waiting notice and every later one. */
  stop(): void {
    this.stopped = true;
    for (const w of [...this.waiters]) w.finish(false);
  }

  /**
   * The notice is in the store already (the agent recorded it on arrival). Resolves ok once this pod's rules (with
   * the notice's
   * addresses) are applied; not ok when that did not happen within timeoutMs or the agent stops.
   */
  async podStarted(notice: PodStartRequest, timeoutMs: number): Promise<{ ok: boolean; message?: string }> {
    const { clock, log } = this.opts;
    if (!notice.namespace || !notice.name) return { ok: true };
    const key = podKey(notice.namespace, notice.name);
    if (this.stopped) return { ok: false, message: 'the strand agent is stopping' };
    // No addresses (an IPAM-less network, or a failed ADD taking its notice back): nothing to bind.
    if (notice.ips.length === 0) return { ok: true };
    const started = clock.now();
    const deadline = started + timeoutMs;
    // The pod's labels: from the informer, else from the API.
    if (!this.podFromApi(key, notice.uid)) {
      const found = await this.fetchPod(notice.namespace, notice.name, notice.uid, deadline);
      if (found === 'absent') {
        // The API has no such pod: no policy can select it. (A runtime's ADD outside Kubernetes.)
        log.info({ pod: key }, 'pod-start notice for a pod the API does not know: no policy applies to it');
        // The notice stays: the store is shared (the local-pods step lists the pod from it until the API
        // shows it) and its one expiry rule decides when it goes, not the gate.
        return { ok: true };
      }
    }
    const ok = this.stopped ? false : await this.wait(key, notice.ips, deadline, started);
    if (ok) return { ok: true };
    if (this.stopped)
      return {
        ok: false,
        message: `the strand agent is stopping; the NetworkPolicy rules of pod ${key} may not be in place`,
      };
    this.opts.onTimeout();
    const c = this.opts.cache;
    const why =
      this.opts.problem() ??
      (c.synced
        ? 'the rules were not applied in time'
        : `not synced with the API server yet: ${c.unsynced.join(', ')}`);
    log.warn(
      { pod: key, ips: notice.ips, waitedMs: clock.now() - started },
      `the policy rules of pod ${key} were not in place within ${timeoutMs} ms: ${why}`,
    );
    return { ok: false, message: `the NetworkPolicy rules of pod ${key} are not in place yet (${why})` };
  }

  /** After each applied pass: the notices whose pod is in `compiled` with all its addresses are
   * answered; how many were. */
  applied(compiled: CompiledPolicy): number {
    if (this.waiters.size === 0) return 0;
    const byKey = new Map(compiled.pods.map((p) => [podKey(p.namespace, p.name), p.ips]));
    return this.answer((key) => byKey.get(key));
  }

  /** Pod `key`'s rules with addresses `ips` are in the kernel (a bind computed ahead, bind-ahead.ts,
   * before the model with them is built): its notices with those addresses are answered; how many. */
  bound(key: string, ips: readonly string[]): number {
    return this.answer((k) => (k === key ? ips : undefined));
  }

  /** Answers ok the notices whose addresses are all among their pod's in the kernel (`ipsOf`). */
  private answer(ipsOf: (key: string) => readonly string[] | undefined): number {
    let answered = 0;
    for (const w of [...this.waiters]) {
      const ips = ipsOf(w.key);
      if (ips && w.ips.every((ip) => ips.includes(ip))) {
        w.finish(true);
        answered++;
      }
    }
    return answered;
  }

  private wait(key: string, ips: string[], deadline: number, seenAt: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      let timer: Timer | undefined;
      const waiter: Waiter = {
        key,
        ips,
        finish: (v) => {
          timer?.cancel();
          this.waiters.delete(waiter);
          resolve(v);
        },
      };
      timer = this.opts.clock.after(Math.max(0, deadline - this.opts.clock.now()), () => waiter.finish(false));
      this.waiters.add(waiter);
      this.opts.requestBind(key, seenAt);
    });
  }

  /**
   * The pod of the notice as the informer (or an earlier GET) shows it. With the notice's uid, an
   * object of another uid is another incarnation of the name (a StatefulSet's pod recreated): the
   * informer's may be stale, so it does not count, and the API is asked.
   */
  private podFromApi(key: string, uid?: string): PodInfo | undefined {
    const [namespace, name] = key.split('/') as [string, string];
    const pod = this.opts.cache.pods.get(name, namespace);
    if (pod && (!uid || !pod.metadata.uid || pod.metadata.uid === uid)) return pod;
    return this.opts.input.fetchedPod(key);
  }

  /** GETs a pod the informer does not show, retrying until `deadline`; 'absent' on a 404. */
  private async fetchPod(
    namespace: string,
    name: string,
    uid: string | undefined,
    deadline: number,
  ): Promise<'found' | 'absent' | 'failed'> {
    const { clock, log } = this.opts;
    const key = podKey(namespace, name);
    if (this.fetching.has(key)) return 'failed';
    this.fetching.add(key);
    try {
      for (;;) {
        const left = deadline - clock.now();
        if (left <= 0 || this.stopped) return 'failed';
        try {
          const path = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`;
          const slim = slimPod(await this.opts.kube.request('GET', path, { timeoutMs: left }));
          if (!slim.ok) {
            log.warn({ pod: key, reason: slim.reason }, 'the API served a malformed pod');
            return 'failed';
          }
          // Another uid than the notice's: the API's current pod of that name, whose labels are the best
          // there is (never "absent": that would start the pod without its rules).
          const apiUid = slim.value.metadata.uid;
          if (uid && apiUid && apiUid !== uid) {
            log.info(
              { pod: key, noticeUid: uid, apiUid },
              'the API shows another uid for the pod of a pod-start notice; using its labels',
            );
          }
          this.opts.input.addFetched(slim.value);
          return 'found';
        } catch (err) {
          if (err instanceof ApiRequestError && err.statusCode === 404) {
            // The informer may have it by now (a watch event overtook the GET).
            return this.opts.cache.pods.get(name, namespace) ? 'found' : 'absent';
          }
          log.debug({ pod: key, err: describeError(err) }, 'could not fetch the pod; retrying');
          if (this.podFromApi(key, uid)) return 'found';
          await sleep(clock, Math.min(200, Math.max(0, deadline - clock.now())));
        }
      }
    } finally {
      this.fetching.delete(key);
    }
  }
}
