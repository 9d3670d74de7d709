/**
 * least_request: Envoy's LEAST_REQUEST as power of `choiceCount` choices over active
 * requests. Weights: the cost is (active + 1) / weight, i.e. the inverse of Envoy's
 * effective weight `weight / (active + 1)^bias` with active_request_bias 1. (Envoy
 * switches to a weighted EDF scheduler when weights differ; comparing the same
 * effective weight inside P2C keeps one O(choiceCount) code path and still sends a
 * weight-3 endpoint about three times the load of a weight-1 one. The +1 makes idle
 * endpoints differ by weight.) With equal weights this is plain "fewest active".
 */
import type { EndpointState } from './state.ts';
import { PowerOfChoicesPolicy } from './p2c.ts';

export class LeastRequestPolicy extends PowerOfChoicesPolicy {
  readonly needsClock = false;

  protected cost(state: EndpointState): number {
    return (state.active + 1) / state.weight;
  }

  record(): void {
    // Active counts are kept by the shell.
  }
}
