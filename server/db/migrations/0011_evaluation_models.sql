CREATE TABLE `evaluation_models` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`model_id` text NOT NULL,
	`fleet_id` text NOT NULL,
	`name` text NOT NULL,
	`record` blob NOT NULL,
	`fingerprint` text NOT NULL,
	`signer_key_sha256` text NOT NULL,
	`model_sha256` text NOT NULL,
	`model_bytes` integer NOT NULL,
	`scenarios_sha256` text NOT NULL,
	`scenarios_bytes` integer NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	`retired_by` text,
	`retired_at` integer,
	`retire_reason` text,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`fleet_id`) REFERENCES `fleets`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `evaluation_models_fingerprint_unique` ON `evaluation_models` (`org_id`,`fingerprint`);--> statement-breakpoint
CREATE UNIQUE INDEX `evaluation_models_model_unique` ON `evaluation_models` (`org_id`,`model_id`);--> statement-breakpoint
CREATE INDEX `evaluation_models_fleet_idx` ON `evaluation_models` (`org_id`,`fleet_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `evaluation_models_fleet_fk_idx` ON `evaluation_models` (`fleet_id`);