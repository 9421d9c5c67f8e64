CREATE TABLE `round_stage_timings` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`round_id` text NOT NULL,
	`actor_kind` text NOT NULL,
	`actor_id` text NOT NULL,
	`stage` text NOT NULL,
	`duration_ms` real NOT NULL,
	`recorded_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`round_id`) REFERENCES `rounds`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `round_stage_timings_unique` ON `round_stage_timings` (`round_id`,`actor_kind`,`actor_id`,`stage`);--> statement-breakpoint
CREATE INDEX `round_stage_timings_org_round_idx` ON `round_stage_timings` (`org_id`,`round_id`);