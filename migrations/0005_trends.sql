CREATE TABLE `fleet_days` (
	`day` integer PRIMARY KEY NOT NULL,
	`hosts` integer NOT NULL,
	`pending` integer NOT NULL,
	`security` integer NOT NULL,
	`need_reboot` integer NOT NULL,
	`errors` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `host_days` (
	`host_id` text NOT NULL,
	`day` integer NOT NULL,
	`pending` integer NOT NULL,
	`security` integer NOT NULL,
	`need_reboot` integer NOT NULL,
	`error` integer NOT NULL,
	`scans` integer NOT NULL,
	PRIMARY KEY(`host_id`, `day`),
	FOREIGN KEY (`host_id`) REFERENCES `hosts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `update_sightings` (
	`host_id` text NOT NULL,
	`name` text NOT NULL,
	`new_version` text NOT NULL,
	`security` integer DEFAULT false NOT NULL,
	`first_seen_at` integer NOT NULL,
	`resolved_at` integer,
	PRIMARY KEY(`host_id`, `name`, `new_version`),
	FOREIGN KEY (`host_id`) REFERENCES `hosts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `update_sightings_open` ON `update_sightings` (`host_id`,`resolved_at`);--> statement-breakpoint
CREATE INDEX `jobs_kind_created` ON `jobs` (`kind`,`created_at`,`status`);