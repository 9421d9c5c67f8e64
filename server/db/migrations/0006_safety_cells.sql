CREATE TABLE `robot_heartbeats` (
	`robot_id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`fleet_id` text NOT NULL,
	`estop` text NOT NULL,
	`robot_time` integer,
	`received_at` integer NOT NULL,
	FOREIGN KEY (`robot_id`) REFERENCES `robots`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `robot_heartbeats_fleet_idx` ON `robot_heartbeats` (`org_id`,`fleet_id`);--> statement-breakpoint
CREATE TABLE `safety_cells` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`fleet_id` text NOT NULL,
	`cell_id` text NOT NULL,
	`version` integer NOT NULL,
	`config` text NOT NULL,
	`updated_by` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`fleet_id`) REFERENCES `fleets`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `safety_cells_fleet_cell_unique` ON `safety_cells` (`org_id`,`fleet_id`,`cell_id`);