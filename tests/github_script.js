// Runs an actions/github-script `script:` the way the action does (an async function body with
// require, github, context and core in scope) against a recording fake of the GitHub API.
// Usage: node github_script.js SCRIPT_FILE STATE_JSON (run in the directory the artifact was
// downloaded to). Prints the calls the script made, as JSON.
const fs = require('fs');

const script = fs.readFileSync(process.argv[2], 'utf8');
const state = JSON.parse(process.argv[3]);
const calls = [];

const github = {
  rest: {
    pulls: {
      get: async ({ pull_number }) => {
        calls.push(['pulls.get', pull_number]);
        if (!(pull_number in state.prs)) throw new Error(`no PR ${pull_number}`);
        return { data: state.prs[pull_number] };
      },
    },
    issues: {
      listComments: async () => ({ data: state.comments }),
      updateComment: async ({ comment_id, body }) => calls.push(['update', comment_id, body]),
      createComment: async ({ issue_number, body }) => calls.push(['create', issue_number, body]),
    },
  },
  paginate: async (method, args) => {
    calls.push(['list', args.issue_number]);
    return (await method(args)).data;
  },
};
const core = {
  setFailed: (message) => calls.push(['failed', message]),
  notice: (message) => calls.push(['notice', message]),
};
const context = { repo: { owner: 'owner', repo: 'repo' }, payload: { workflow_run: state.run } };

const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
new AsyncFunction('require', 'github', 'context', 'core', script)(require, github, context, core)
  .then(() => console.log(JSON.stringify(calls)))
  .catch((error) => {
    console.log(JSON.stringify([...calls, ['threw', String(error)]]));
  });
