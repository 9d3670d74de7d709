// Global set-up for the test run (the Consul agent is added by the Consul harness).
export default function setup(): void {}
