CREATE TABLE `policies` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`spec` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`last_scheduled_for` integer
);
--> statement-breakpoint
CREATE TABLE `rollout_hosts` (
	`rollout_id` text NOT NULL,
	`host_id` text NOT NULL,
	`name` text NOT NULL,
	`position` integer NOT NULL,
	`batch` integer,
	`status` text NOT NULL,
	`job_id` text,
	`reboot_job_id` text,
	`reason` text,
	`packages` text,
	PRIMARY KEY(`rollout_id`, `host_id`),
	FOREIGN KEY (`rollout_id`) REFERENCES `rollouts`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`host_id`) REFERENCES `hosts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE TABLE `rollouts` (
	`id` text PRIMARY KEY NOT NULL,
	`policy_id` text,
	`policy_name` text NOT NULL,
	`spec` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`batch` integer DEFAULT 0 NOT NULL,
	`batches` integer DEFAULT 0 NOT NULL,
	`failures` integer DEFAULT 0 NOT NULL,
	`trigger` text NOT NULL,
	`requested_by` text,
	`reason` text,
	`window_ends_at` integer,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	FOREIGN KEY (`policy_id`) REFERENCES `policies`(`id`) ON UPDATE no action ON DELETE set null
);
--> statement-breakpoint
CREATE INDEX `rollouts_policy` ON `rollouts` (`policy_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `rollouts_status` ON `rollouts` (`status`);--> statement-breakpoint
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
ALTER TABLE `jobs` ADD `rollout_id` text REFERENCES rollouts(id);--> statement-breakpoint
CREATE INDEX `jobs_rollout` ON `jobs` (`rollout_id`);