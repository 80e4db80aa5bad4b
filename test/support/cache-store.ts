// One informer's cache as the policy enforcer reads it (get by name and namespace, list in insertion
// order), for the enforcer's unit and integration tests' ClusterCache stand-ins.
export class Store<T extends { metadata: { name: string; namespace?: string } }> {
  readonly m = new Map<string, T>();
  put(o: T): void {
    this.m.set(`${o.metadata.namespace ?? ''}/${o.metadata.name}`, o);
  }
  get(name: string, namespace?: string): T | undefined {
    return this.m.get(`${namespace ?? ''}/${name}`);
  }
  list(): T[] {
    return [...this.m.values()];
  }
}
