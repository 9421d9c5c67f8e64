CREATE TABLE `canary_telemetry` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`release_id` text NOT NULL,
	`robot_id` text NOT NULL,
	`runs` integer NOT NULL,
	`errors` integer NOT NULL,
	`latency_p99_ms` real NOT NULL,
	`safety_events` integer NOT NULL,
	`reported_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`robot_id`) REFERENCES `robots`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `canary_telemetry_release_idx` ON `canary_telemetry` (`org_id`,`release_id`,`reported_at`);--> statement-breakpoint
CREATE INDEX `canary_telemetry_robot_fk_idx` ON `canary_telemetry` (`robot_id`);--> statement-breakpoint
CREATE TABLE `registry_base_models` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`fingerprint` text NOT NULL,
	`name` text NOT NULL,
	`task_types` text NOT NULL,
	`version` text NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `registry_base_models_org_fp_unique` ON `registry_base_models` (`org_id`,`fingerprint`);--> statement-breakpoint
CREATE TABLE `release_rollouts` (
	`release_id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`fleet_id` text NOT NULL,
	`kind` text NOT NULL,
	`from_release_id` text NOT NULL,
	`restores_version` integer,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `release_rollouts_from_idx` ON `release_rollouts` (`org_id`,`from_release_id`);--> statement-breakpoint
CREATE TABLE `rollout_policies` (
	`fleet_id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`max_error_rate` real NOT NULL,
	`max_p99_ms` real NOT NULL,
	`max_safety_events` integer NOT NULL,
	`updated_by` text NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`fleet_id`) REFERENCES `fleets`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `rollout_policies_org_idx` ON `rollout_policies` (`org_id`);