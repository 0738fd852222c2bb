// One step of the analysis scenario, driven with the official Convex clients the way the web app
// would: ConvexHttpClient for calls, ConvexClient (WebSocket) for a live query. Function
// references by path, `sessionToken` in the arguments.
//
//   node analysis.mjs <server url> <step> '<json input>'
//
// Prints one JSON object. A call that may fail is made with `attempt` and yields
// `{"$error": {isConvexError, code, field, message}}`. See ../analysis/npm.rs for what is checked.
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import { ConvexError } from "convex/values";

const [url, step, input = "{}"] = process.argv.slice(2);
const args = JSON.parse(input);
const client = new ConvexHttpClient(url);
const ref = makeFunctionReference;

async function must(kind, path, fnArgs) {
  try {
    return await client[kind](ref(path), fnArgs);
  } catch (e) {
    throw new Error(`${kind} ${path} failed: ${e.message} ${JSON.stringify(e.data ?? null)}`);
  }
}

async function attempt(kind, path, fnArgs) {
  try {
    return await client[kind](ref(path), fnArgs);
  } catch (e) {
    const data = e instanceof ConvexError && typeof e.data === "object" ? e.data : {};
    return {
      $error: {
        isConvexError: e instanceof ConvexError,
        code: data.code ?? null,
        field: data.field ?? null,
        message: data.message ?? e.message,
      },
    };
  }
}

const q = (path, a) => must("query", path, a);
const m = (path, a) => must("mutation", path, a);
const act = (path, a) => must("action", path, a);
const page = { numItems: 20, cursor: null };
const formTime = (hours) => new Date(Date.now() - hours * 3600e3).toISOString().slice(0, 16);

const steps = {
  // The frontline worker records, clarifies, enhances and submits the incident.
  async capture({ worker, site, narrative }) {
    const sessionToken = worker;
    const incidentId = await m("incidents:create", {
      sessionToken,
      site_id: site,
      participant_name: "Sarah Williams",
      reporter_name: "Jo Worker",
      location: "Lounge, Primary house",
      event_date_time: formTime(2),
    });
    const incident_id = incidentId;
    await m("narratives:create", { sessionToken, incident_id });
    await m("narratives:update", { sessionToken, incident_id, ...narrative });
    const queueBefore = await attempt("query", "analysis:listQueue", {
      sessionToken,
      paginationOpts: page,
    });
    await act("aiClarification:generateClarificationQuestions", {
      sessionToken,
      incident_id,
      phase: "during_event",
      narrative_content: narrative.during_event,
    });
    const questions = await q("aiClarification:getClarificationQuestions", {
      sessionToken,
      incident_id,
      phase: "during_event",
    });
    await m("aiClarification:submitClarificationAnswer", {
      sessionToken,
      incident_id,
      question_id: questions[0].question_id,
      phase: "during_event",
      answer_text: "The floor had just been mopped.",
    });
    await act("aiEnhancement:enhanceNarrativePhase", { sessionToken, incident_id, phase: "during_event" });
    const submitted = await m("aiEnhancement:submitIncidentForAnalysis", { sessionToken, incident_id });
    return { incidentId, queueBefore, submitted };
  },

  // The team lead: inbox, queue, start, conditions (edited twice, a stale second editor),
  // classifications reviewed, screening.
  async analyse({ lead, lead2, incidentId }) {
    const incident_id = incidentId;
    const inbox = await q("notifications:listMine", { sessionToken: lead, paginationOpts: page });
    const queue = await q("analysis:listQueue", { sessionToken: lead, paginationOpts: page });
    const analysisId = await m("analysis:startAnalysis", { sessionToken: lead, incident_id });
    const generated = await act("analysis:generateContributingConditions", {
      sessionToken: lead,
      incident_id,
    });
    const edited = generated.conditions.map((c, i) =>
      i === 0 ? { ...c, title: "Wet floor after mopping", status: "confirmed" } : c,
    );
    const first = await m("analysis:updateContributingConditions", {
      sessionToken: lead,
      incident_id,
      conditions: edited,
      expected_revision: 1,
      edit_time_ms: 12000,
    });
    const second = await m("analysis:updateContributingConditions", {
      sessionToken: lead,
      incident_id,
      conditions: edited.slice(0, 1),
      expected_revision: 2,
    });
    // A second editor who loaded revision 1.
    const stale = await attempt("mutation", "analysis:updateContributingConditions", {
      sessionToken: lead,
      incident_id,
      conditions: edited,
      expected_revision: 1,
    });
    const otherLead = await attempt("mutation", "analysis:updateContributingConditions", {
      sessionToken: lead2,
      incident_id,
      conditions: edited,
      expected_revision: 3,
    });
    const suggested = await act("analysis:generateClassifications", { sessionToken: lead, incident_id });
    const primary = suggested.classifications.find((c) => c.rank === "primary");
    for (const c of suggested.classifications.filter((c) => c.rank !== "primary")) {
      await m("analysis:removeClassification", {
        sessionToken: lead,
        incident_id,
        classification_id: c.classification_id,
      });
    }
    const reviewed = await m("analysis:saveClassification", {
      sessionToken: lead,
      incident_id,
      classification_id: primary.classification_id,
      rank: "primary",
      incident_type: primary.incident_type,
      severity: primary.severity,
      risk_level: primary.risk_level,
      supporting_evidence: primary.supporting_evidence,
      recommended_actions: primary.recommended_actions,
      review_notes: "Agreed",
    });
    const screened = await act("analysis:screenReportable", { sessionToken: lead, incident_id });
    const view = await q("analysis:getAnalysis", { sessionToken: lead, incident_id });
    return { inbox, queue, analysisId, generated, first, second, stale, otherLead, suggested, reviewed, screened, view };
  },

  // A company admin confirms the screening.
  async decide({ admin, incidentId, categories }) {
    const decided = await m("analysis:decideReportable", {
      sessionToken: admin,
      incident_id: incidentId,
      decision: "reportable",
      categories,
      harm_caused: true,
      rationale: "Sarah broke her wrist and was taken to hospital.",
    });
    const deadlines = await q("analysis:listReportableDeadlines", { sessionToken: admin });
    return { decided, deadlines };
  },

  // Live: the lead's deadline list and inbox over a WebSocket; the immediate notification is
  // recorded by someone else and the list empties without asking again.
  async live({ lead, admin, incidentId, reference }) {
    const live = new ConvexClient(url);
    const seen = [];
    const timer = setTimeout(() => {
      console.log(JSON.stringify({ timeout: "no live update in 20 s", seen }));
      process.exit(2);
    }, 20000);
    let resolveEmpty;
    const emptied = new Promise((r) => (resolveEmpty = r));
    const stop = live.onUpdate(ref("analysis:listReportableDeadlines"), { sessionToken: lead }, (v) => {
      seen.push(v.length);
      if (seen.length === 1) {
        m("analysis:recordCommissionNotification", {
          sessionToken: admin,
          incident_id: incidentId,
          form: "immediate",
          submitted_at: Date.now(),
          reference,
        }).catch((e) => {
          console.log(JSON.stringify({ failed: e.message }));
          process.exit(3);
        });
      }
      if (v.length === 0 && seen.length > 1) resolveEmpty();
    });
    await emptied;
    stop();
    clearTimeout(timer);
    await live.close();
    return { seen };
  },

  // Completion, what the reporter sees, the report, refusals and the reopening.
  async complete({ lead, worker, admin, outsider, incidentId }) {
    const incident_id = incidentId;
    const byWorker = await attempt("mutation", "analysis:completeAnalysis", { sessionToken: worker, incident_id });
    const completed = await m("analysis:completeAnalysis", { sessionToken: lead, incident_id });
    const incident = await q("incidents:getById", { sessionToken: worker, id: incident_id });
    const reporterView = await q("analysis:getAnalysis", { sessionToken: worker, incident_id });
    const workerQueue = await attempt("query", "analysis:listQueue", { sessionToken: worker, paginationOpts: page });
    const foreign = await attempt("query", "analysis:getAnalysis", { sessionToken: outsider, incident_id });
    const report = await act("analysis:exportReport", { sessionToken: lead, incident_id, format: "markdown" });
    const reopenByLead = await attempt("mutation", "analysis:reopenAnalysis", {
      sessionToken: lead,
      incident_id,
      reason: "New information",
    });
    const reopened = await m("analysis:reopenAnalysis", {
      sessionToken: admin,
      incident_id,
      reason: "The family raised a new concern",
    });
    const after = await q("incidents:getById", { sessionToken: lead, id: incident_id });
    return { byWorker, completed, incident, reporterView, workerQueue, foreign, report, reopenByLead, reopened, after };
  },
};

const result = await steps[step](args);
console.log(JSON.stringify(result));
