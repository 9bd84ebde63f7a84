CREATE INDEX `hosts_name` ON `hosts` ("name" collate nocase);--> statement-breakpoint
CREATE INDEX `jobs_kind_created` ON `jobs` (`kind`,`created_at`);