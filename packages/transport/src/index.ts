export type {
  AbortOptions,
  Connection,
  DType,
  LinkStats,
  Mesh,
  TensorKey,
  TensorMessage,
  Transport,
  Unsubscribe,
} from './types.ts';
export { createMemoryNetwork, memoryTransport } from './memory.ts';
export type { MemoryNetwork, MemoryTransportOptions } from './memory.ts';
export { createMesh, emptyLinkStats } from './mesh.ts';
export { TabBroker, locksLiveness, tabLinksTransport } from './tab-links.ts';
export type { TabLinksOptions, TabLiveness } from './tab-links.ts';
export type { MeshOptions } from './mesh.ts';
