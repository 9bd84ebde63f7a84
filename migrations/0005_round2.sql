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
CREATE TABLE `notify_channels` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`type` text NOT NULL,
	`via` text DEFAULT 'worker' NOT NULL,
	`events` text DEFAULT '[]' NOT NULL,
	`tags` text DEFAULT '[]' NOT NULL,
	`min_severity` text DEFAULT 'info' NOT NULL,
	`enabled` integer DEFAULT true NOT NULL,
	`max_per_hour` integer DEFAULT 30 NOT NULL,
	`config` text DEFAULT '{}' NOT NULL,
	`secret` text,
	`last_sent_at` integer,
	`last_error` text,
	`last_error_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `notify_deliveries` (
	`id` text PRIMARY KEY NOT NULL,
	`channel_id` text NOT NULL,
	`event` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`message` text NOT NULL,
	`error` text,
	`created_at` integer NOT NULL,
	`next_attempt_at` integer,
	`sent_at` integer,
	FOREIGN KEY (`channel_id`) REFERENCES `notify_channels`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `notify_deliveries_channel` ON `notify_deliveries` (`channel_id`,`created_at`);--> statement-breakpoint
CREATE INDEX `notify_deliveries_due` ON `notify_deliveries` (`next_attempt_at`) WHERE "notify_deliveries"."status" = 'pending';--> statement-breakpoint
CREATE TABLE `notify_events` (
	`id` text PRIMARY KEY NOT NULL,
	`event` text NOT NULL,
	`host_id` text,
	`data` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `notify_events_created` ON `notify_events` (`created_at`);--> statement-breakpoint
CREATE TABLE `notify_state` (
	`key` text PRIMARY KEY NOT NULL,
	`value` text NOT NULL,
	`updated_at` integer NOT NULL
);
--> statement-breakpoint
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
ALTER TABLE `api_tokens` ADD `created_by_user_id` text;--> statement-breakpoint
ALTER TABLE `audit` ADD `detail` text;--> statement-breakpoint
ALTER TABLE `job_output` ADD `gz` blob;--> statement-breakpoint
ALTER TABLE `jobs` ADD `rollout_id` text REFERENCES rollouts(id);--> statement-breakpoint
CREATE INDEX `jobs_rollout` ON `jobs` (`rollout_id`);--> statement-breakpoint
CREATE INDEX `jobs_kind_created` ON `jobs` (`kind`,`created_at`,`status`);--> statement-breakpoint
ALTER TABLE `relays` ADD `public_key_offered` text;--> statement-breakpoint
CREATE INDEX `hosts_name` ON `hosts` ("name" collate nocase);