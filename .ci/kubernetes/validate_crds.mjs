// Validates prometheus-operator resources (JSON, one object per file named on the command line)
// against the CRDs' schemas, which @kubernetes-models/prometheus-operator ships compiled to ajv
// validators: types, enums, formats and required fields. Exit 1 on the first invalid one.
const failures = [];
for (const file of process.argv.slice(2)) {
  const object = JSON.parse(await import("node:fs").then((fs) => fs.readFileSync(file, "utf8")));
  const [group, version] = object.apiVersion.split("/");
  if (group !== "monitoring.coreos.com") {
    failures.push(`${file}: ${object.apiVersion} is not a prometheus-operator API`);
    continue;
  }
  let model;
  try {
    model = await import(`@kubernetes-models/prometheus-operator/${group}/${version}/${object.kind}`);
  } catch {
    failures.push(`${file}: no schema for ${object.apiVersion} ${object.kind}`);
    continue;
  }
  try {
    new model[object.kind](object).validate();
    console.log(`${file}: ${object.kind} ${object.metadata.name} valid`);
  } catch (e) {
    failures.push(`${file}: ${e.message}`);
  }
}
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
