/**
 * What a framework adapter needs from a mesh: its inbound chain. Declared here
 * as a structural type (server/ sits below mesh/, and each package entry point
 * carries its own copy of the declarations, so a class would not match).
 */
import type { InboundGate, InboundOptions } from './inbound.ts';

/** A mesh (`createMesh()`), as the adapters see it. */
export interface InboundSource {
  inbound(options?: InboundOptions): InboundGate;
}
