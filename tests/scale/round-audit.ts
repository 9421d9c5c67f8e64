// Shared by the scale tests: the audit actions of one round, read page by page through the API the way an
// auditor would (entries naming the round as target or in their details).
type Get = (method: 'GET', path: string) => Promise<{ status: number; body: any }>;

export async function roundAuditActions(get: Get, roundId: string): Promise<string[]> {
  const actions: string[] = [];
  for (let after = 0; ; ) {
    const page = await get('GET', `/v1/audit?after=${after}&limit=1000`);
    if (page.status !== 200) throw new Error(`GET /v1/audit answered ${page.status}`);
    for (const e of page.body.entries) {
      const details = typeof e.details === 'string' ? JSON.parse(e.details) : e.details;
      if (e.target === roundId || details?.roundId === roundId) actions.push(e.action);
    }
    if (page.body.next === null || page.body.next === undefined || page.body.entries.length === 0) break;
    after = page.body.next;
  }
  return actions;
}
