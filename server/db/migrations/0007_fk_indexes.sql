CREATE INDEX `idempotency_keys_contribution_fk_idx` ON `idempotency_keys` (`contribution_id`);--> statement-breakpoint
CREATE INDEX `release_deliveries_robot_fk_idx` ON `release_deliveries` (`robot_id`);--> statement-breakpoint
CREATE INDEX `safety_cells_fleet_fk_idx` ON `safety_cells` (`fleet_id`);