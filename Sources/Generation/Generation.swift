// Batched rollout engine.
