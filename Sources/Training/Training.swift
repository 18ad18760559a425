// GRPO / SFT training units.
