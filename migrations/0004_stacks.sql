CREATE TABLE `stacks` (
	`id` text PRIMARY KEY NOT NULL,
	`host_id` text NOT NULL,
	`name` text NOT NULL,
	`status` text NOT NULL,
	`working_dir` text,
	`config_files` text DEFAULT '[]' NOT NULL,
	`containers` text DEFAULT '[]' NOT NULL,
	`updates_count` integer DEFAULT 0 NOT NULL,
	`uncheckable_count` integer DEFAULT 0 NOT NULL,
	`checked_at` integer NOT NULL,
	`error` text,
	FOREIGN KEY (`host_id`) REFERENCES `hosts`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `stacks_host_name` ON `stacks` (`host_id`,`name`);--> statement-breakpoint
DROP INDEX `jobs_one_change_per_host`;--> statement-breakpoint
CREATE UNIQUE INDEX `jobs_one_change_per_host` ON `jobs` (`host_id`) WHERE "jobs"."kind" in ('upgrade', 'reboot', 'stack-update') and "jobs"."status" in ('queued', 'dispatched', 'running');