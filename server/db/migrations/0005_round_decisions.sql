CREATE TABLE `decision_idempotency_keys` (
	`org_id` text NOT NULL,
	`key` text NOT NULL,
	`request_sha256` text NOT NULL,
	`response` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`org_id`, `key`),
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `release_deliveries` (
	`org_id` text NOT NULL,
	`release_id` text NOT NULL,
	`robot_id` text NOT NULL,
	`delivered_at` integer NOT NULL,
	`status` text,
	`detail` text,
	`reported_at` integer,
	PRIMARY KEY(`org_id`, `release_id`, `robot_id`),
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`robot_id`) REFERENCES `robots`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `round_decisions` (
	`id` text PRIMARY KEY NOT NULL,
	`org_id` text NOT NULL,
	`round_pk` text NOT NULL,
	`round_id` text NOT NULL,
	`kind` text NOT NULL,
	`release_id` text,
	`record` blob,
	`fingerprint` blob,
	`reason` text,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`org_id`) REFERENCES `organizations`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`round_pk`) REFERENCES `rounds`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `round_decisions_round_unique` ON `round_decisions` (`round_pk`);--> statement-breakpoint
CREATE INDEX `round_decisions_org_idx` ON `round_decisions` (`org_id`);--> statement-breakpoint
-- Rounds released before decisions were recorded: their first release is their decision.
INSERT INTO `round_decisions` (`id`, `org_id`, `round_pk`, `round_id`, `kind`, `release_id`, `created_by`, `created_at`)
SELECT 'dec_' || `r`.`id`, `r`.`org_id`, `r`.`round_pk`, `rd`.`round_id`, 'release', `r`.`release_id`, `r`.`created_by`, `r`.`created_at`
FROM `releases` `r` JOIN `rounds` `rd` ON `rd`.`id` = `r`.`round_pk`
WHERE `r`.`kind` = 'release'
  AND `r`.`release_version` = (SELECT MIN(`r2`.`release_version`) FROM `releases` `r2` WHERE `r2`.`round_pk` = `r`.`round_pk` AND `r2`.`kind` = 'release');
