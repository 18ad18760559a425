// Rollout engine tests.
