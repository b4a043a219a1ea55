// Evaluates IAM requests with @cloud-copilot/iam-simulate (test-only, AGPL-3.0).
//
// stdin: a JSON array of cases
//   {id, principal, action, resource, account, context,
//    identityPolicies: [{name, policy}], resourcePolicy?, endpointPolicy?}
// stdout: a JSON array of {id, decision, engine, errors?, ignored?}
//   decision: "Allowed" | "ExplicitlyDenied" | "ImplicitlyDenied" | null on an error.
//
// The evaluator validates every policy, action, resource and context key. A
// context key it does not know for the action is dropped silently, which would
// hide a typo: every dropped key is reported as an error. One family is the
// exception: iam-simulate 0.1.173 matches variable context keys only in their
// "prefix/name" form, so it drops kms:EncryptionContext:<name> although the
// action defines it. Those cases are evaluated, after the same validation, with
// runUnsafeSimulation, which keeps every context value.
import { runSimulation, runUnsafeSimulation } from '@cloud-copilot/iam-simulate'
import { createValidatedPolicy, validateResourcePolicy } from '@cloud-copilot/iam-policy'

const ENCRYPTION_CONTEXT = /^kms:encryptioncontext:[^/]+$/i

function simulation(c) {
  return {
    request: {
      principal: c.principal,
      action: c.action,
      resource: { resource: c.resource, accountId: c.account },
      contextVariables: c.context ?? {}
    },
    identityPolicies: c.identityPolicies ?? [],
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    resourcePolicy: c.resourcePolicy ?? undefined,
    vpcEndpointPolicies: c.endpointPolicy ? [{ name: 'endpoint', policy: c.endpointPolicy }] : undefined
  }
}

async function evaluate(c) {
  const sim = simulation(c)
  const result = await runSimulation(sim, {})
  if (result.resultType === 'error') {
    return { id: c.id, decision: null, errors: result.errors }
  }
  const results = result.resultType === 'single' ? [result.result] : result.results
  const ignored = [...new Set(results.flatMap((r) => r.ignoredContextKeys ?? []))]
  const unknown = ignored.filter((key) => !ENCRYPTION_CONTEXT.test(key))
  if (unknown.length > 0) {
    return { id: c.id, decision: null, errors: { message: 'context keys the action does not have', keys: unknown } }
  }
  if (ignored.length === 0) {
    return { id: c.id, decision: result.overallResult, engine: 'runSimulation' }
  }
  if (c.endpointPolicy) {
    // runUnsafeSimulation takes no endpoint policy: no KMS request passes one here.
    return { id: c.id, decision: null, errors: { message: 'encryption context with an endpoint policy' } }
  }
  const unsafe = {
    ...sim,
    vpcEndpointPolicies: undefined,
    resourcePolicy: sim.resourcePolicy
      ? createValidatedPolicy(sim.resourcePolicy, validateResourcePolicy, { name: 'resource' })
      : undefined
  }
  return { id: c.id, decision: runUnsafeSimulation(unsafe, {}), engine: 'runUnsafeSimulation', ignored }
}

const chunks = []
for await (const chunk of process.stdin) chunks.push(chunk)
const cases = JSON.parse(Buffer.concat(chunks).toString('utf8'))
const outcomes = []
for (const c of cases) {
  try {
    outcomes.push(await evaluate(c))
  } catch (error) {
    outcomes.push({ id: c.id, decision: null, errors: { message: String(error) } })
  }
}
process.stdout.write(JSON.stringify(outcomes))
