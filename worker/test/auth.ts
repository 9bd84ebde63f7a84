/** The admin API token every test request carries unless it says otherwise (inserted
 * before each test by apply-migrations.ts). */
export const ADMIN_TOKEN = 'pmt_test-admin-token-0123456789abcdefghijklmnop';
