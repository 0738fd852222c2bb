// One step of the incident capture scenarios (reference §10, 4–11), driven with the official
// ConvexHttpClient the way the capture wizard drives the backend: function references by path and
// `sessionToken` in the arguments.
//
//   node capture.mjs <server url> <step> '<json input>'
//
// Prints one JSON object: what the user would see. A call that may fail is made with `attempt` and
// yields `{"$error": {isConvexError, code, field, message}}`; a call made with `must` that fails
// ends the step with a non-zero exit. See ../clarification/npm.rs for what is checked.
import { ConvexHttpClient } from "convex/browser";
import { makeFunctionReference } from "convex/server";
import { ConvexError } from "convex/values";

const [url, step, input = "{}"] = process.argv.slice(2);
const args = JSON.parse(input);
const client = new ConvexHttpClient(url);

async function must(kind, path, fnArgs) {
  try {
    return await client[kind](makeFunctionReference(path), fnArgs);
  } catch (e) {
    throw new Error(`${kind} ${path} failed: ${e.message} ${JSON.stringify(e.data ?? null)}`);
  }
}

async function attempt(kind, path, fnArgs) {
  try {
    return await client[kind](makeFunctionReference(path), fnArgs);
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

const PHASES = ["before_event", "during_event", "end_event", "post_event"];

// `YYYY-MM-DDTHH:mm` (UTC) `hours` ago, as the incident form sends it.
const formTime = (hours) => new Date(Date.now() - hours * 3600e3).toISOString().slice(0, 16);

const steps = {
  // Scenario 4: the worker signs in and records an incident about Sarah; bad details are refused.
  async record({ email, password, site, foreignSite, participant }) {
    const login = await m("auth:loginUser", { email, password });
    const sessionToken = login.sessionToken;
    const details = {
      sessionToken,
      site_id: site,
      participant_id: participant,
      participant_name: "Sarah Williams",
      reporter_name: "Jo Worker",
      location: "Lounge, Primary house",
    };
    const incidentId = await m("incidents:create", { ...details, event_date_time: formTime(2) });
    const draft = await q("incidents:getDraftIncident", { sessionToken, incidentId });
    const tooOld = await attempt("mutation", "incidents:create", {
      ...details,
      event_date_time: formTime(31 * 24),
    });
    const foreign = await attempt("mutation", "incidents:create", {
      ...details,
      site_id: foreignSite,
      event_date_time: formTime(2),
    });
    return { sessionToken, incidentId, draft, tooOld, foreign };
  },

  // Scenarios 5, 6 and 9: the narrative, questions for every phase (cached on repeat, forced
  // afresh), answers upserted, and the resume point.
  async clarify({ sessionToken, incidentId, narrative }) {
    const ids = { sessionToken, incident_id: incidentId };
    await m("narratives:create", ids);
    const versions = [];
    for (const phase of PHASES) {
      versions.push((await m("narratives:update", { ...ids, [phase]: narrative[phase] })).version);
    }
    const afterNarrative = await q("incidents:getById", { sessionToken, id: incidentId });
    const generated = await act("aiClarification:generateAllClarificationQuestions", { ...ids, narrative });
    const repeated = await act("aiClarification:generateAllClarificationQuestions", { ...ids, narrative });
    const before = await q("aiClarification:getClarificationQuestions", { ...ids, phase: "before_event" });
    const first = await m("aiClarification:submitClarificationAnswer", {
      ...ids,
      question_id: before[0].question_id,
      phase: "before_event",
      answer_text: "Tom",
    });
    const second = await m("aiClarification:submitClarificationAnswer", {
      ...ids,
      question_id: before[0].question_id,
      phase: "before_event",
      answer_text: "Tom and two residents were in the lounge.",
    });
    // Answers during_event, then asks for new during_event questions: the old answer goes.
    const during = await q("aiClarification:getClarificationQuestions", { ...ids, phase: "during_event" });
    await m("aiClarification:submitClarificationAnswer", {
      ...ids,
      question_id: during[0].question_id,
      phase: "during_event",
      answer_text: "About two minutes, then she sat down.",
    });
    const forced = await act("aiClarification:generateClarificationQuestions", {
      ...ids,
      phase: "during_event",
      narrative_content: narrative.during_event,
      force_regenerate: true,
    });
    const answers = await q("aiClarification:getClarificationAnswers", ids);
    // Scenario 9: the worker leaves at step 5 and comes back.
    await m("incidents:updateWorkflowProgress", {
      sessionToken,
      incidentId,
      current_step: 5,
      content_preview: narrative.before_event,
    });
    const resume = await q("incidents_listing:getMyIncompleteIncidents", { sessionToken });
    return { versions, afterNarrative, generated, repeated, first, second, forced, answers, resume };
  },

  // Scenarios 7 and 8: every phase enhanced (the server's AI fails for one), the checklist, the
  // submission and what it locks.
  async finish({ sessionToken, incidentId, incomplete }) {
    const ids = { sessionToken, incident_id: incidentId };
    const enhanced = [];
    for (const phase of PHASES) {
      enhanced.push(await act("aiEnhancement:enhanceNarrativePhase", { ...ids, phase }));
    }
    const view = await q("aiEnhancement:getEnhancedNarrative", ids);
    const checklist = await q("aiEnhancement:validateWorkflowCompletion", ids);
    const blocked = await attempt("mutation", "aiEnhancement:submitIncidentForAnalysis", {
      sessionToken,
      incident_id: incomplete,
    });
    const submitted = await m("aiEnhancement:submitIncidentForAnalysis", ids);
    const again = await attempt("mutation", "aiEnhancement:submitIncidentForAnalysis", ids);
    const edit = await attempt("mutation", "narratives:update", { ...ids, before_event: "Changed" });
    const incident = await q("incidents:getById", { sessionToken, id: incidentId });
    const stats = await q("narratives:getStatsByIncidentId", ids);
    const resume = await q("incidents_listing:getMyIncompleteIncidents", { sessionToken });
    return { enhanced, view, checklist, blocked, submitted, again, edit, incident, stats, resume };
  },

  // Scenarios 10 and 11: another company sees nothing; the status machine holds; the team lead
  // starts the analysis of the submitted incident.
  async isolation({ outsider, worker, lead, incidentId, draftId }) {
    const ids = (sessionToken) => ({ sessionToken, incident_id: incidentId });
    const foreign = {
      read: await attempt("query", "incidents:getById", { sessionToken: outsider, id: incidentId }),
      questions: await attempt("query", "aiClarification:getClarificationQuestions", ids(outsider)),
      answer: await attempt("mutation", "aiClarification:submitClarificationAnswer", {
        ...ids(outsider),
        question_id: "before_event_q1",
        phase: "before_event",
        answer_text: "Written by another company",
      }),
      enhance: await attempt("action", "aiEnhancement:enhanceNarrativePhase", {
        ...ids(outsider),
        phase: "before_event",
      }),
      mine: await q("incidents_listing:getMyIncidents", { sessionToken: outsider, includeCompleted: true }),
    };
    const jump = await attempt("mutation", "incidents:updateStatus", {
      sessionToken: worker,
      id: draftId,
      capture_status: "completed",
    });
    const earlyAnalysis = await attempt("mutation", "incidents:updateStatus", {
      sessionToken: lead,
      id: draftId,
      analysis_status: "in_progress",
    });
    const workerAnalysis = await attempt("mutation", "incidents:updateStatus", {
      sessionToken: worker,
      id: incidentId,
      analysis_status: "in_progress",
    });
    const leadQuestions = await q("aiClarification:getClarificationQuestions", ids(lead));
    const analysis = await m("incidents:updateStatus", {
      sessionToken: lead,
      id: incidentId,
      analysis_status: "in_progress",
    });
    const incident = await q("incidents:getById", { sessionToken: lead, id: incidentId });
    return { foreign, jump, earlyAnalysis, workerAnalysis, leadQuestions, analysis, incident };
  },
};

if (!steps[step]) {
  console.error(`unknown step ${step}; known: ${Object.keys(steps).join(", ")}`);
  process.exit(2);
}
const result = await steps[step](args);
const replacer = (_k, v) => (typeof v === "bigint" ? `${v}n` : v);
console.log(JSON.stringify(result, replacer));
