//! The Table column definitions per resource, with the descriptions the real API server sends.

use super::resources::Resource;

pub(super) type Column = (&'static str, &'static str, u8, &'static str);

const NAME: Column = (
    "Name",
    "string",
    0,
    "Name must be unique within a namespace.",
);
const AGE: Column = (
    "Age",
    "string",
    0,
    "CreationTimestamp is a timestamp representing the server time when this object was created.",
);

const CONTAINERS: Column = (
    "Containers",
    "string",
    1,
    "Names of each container in the template.",
);
const IMAGES: Column = (
    "Images",
    "string",
    1,
    "Images referenced by each container in the template.",
);
const SELECTOR: Column = ("Selector", "string", 1, "Label selector for pods.");

/// The column definitions of `resource`, as the real API server sends them.
pub(super) fn columns(resource: Resource) -> Vec<Column> {
    match resource {
        Resource::Pods => vec![
            NAME,
            (
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            (
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            (
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
            ),
            AGE,
            ("IP", "string", 1, "IP address allocated to the pod."),
            (
                "Node",
                "string",
                1,
                "Name of the node the pod is assigned to.",
            ),
            (
                "Nominated Node",
                "string",
                1,
                "Name of the node nominated for preemption.",
            ),
            (
                "Readiness Gates",
                "string",
                1,
                "The readiness gates of the pod.",
            ),
        ],
        Resource::Events => vec![
            (
                "Last Seen",
                "string",
                0,
                "Time when this event was last observed.",
            ),
            ("Type", "string", 0, "Type of this event (Normal, Warning)."),
            ("Reason", "string", 0, "Why the action was taken."),
            ("Object", "string", 0, "The object this event is about."),
            (
                "Subobject",
                "string",
                1,
                "The field of the object this event is about.",
            ),
            ("Source", "string", 1, "The component reporting this event."),
            (
                "Message",
                "string",
                0,
                "A human-readable description of the status of this operation.",
            ),
            (
                "First Seen",
                "string",
                1,
                "Time when this event was first observed.",
            ),
            (
                "Count",
                "integer",
                1,
                "The number of times this event has occurred.",
            ),
            (
                "Name",
                "string",
                1,
                "Name must be unique within a namespace.",
            ),
        ],
        Resource::Nodes => vec![
            NAME,
            ("Status", "string", 0, "The status of the node."),
            ("Roles", "string", 0, "The roles of the node."),
            AGE,
            (
                "Version",
                "string",
                0,
                "Kubelet version reported by the node.",
            ),
            ("Internal-IP", "string", 1, "The node's internal IP."),
            ("External-IP", "string", 1, "The node's external IP."),
            ("OS-Image", "string", 1, "OS image reported by the node."),
            (
                "Kernel-Version",
                "string",
                1,
                "Kernel version reported by the node.",
            ),
            (
                "Container-Runtime",
                "string",
                1,
                "Container runtime version reported by the node.",
            ),
        ],
        Resource::Namespaces => vec![
            NAME,
            ("Status", "string", 0, "The status of the namespace."),
            AGE,
        ],
        Resource::ConfigMaps => vec![
            NAME,
            ("Data", "string", 0, "Number of keys in the config map."),
            AGE,
        ],
        Resource::Deployments => vec![
            NAME,
            ("Ready", "string", 0, "Number of the pod with ready state."),
            (
                "Up-to-date",
                "string",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            (
                "Available",
                "string",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Resource::ReplicaSets => vec![
            NAME,
            ("Desired", "integer", 0, "Number of desired pods."),
            ("Current", "integer", 0, "Number of actual replicas."),
            (
                "Ready",
                "integer",
                0,
                "The number of ready replicas for this replica set.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Resource::Jobs => vec![
            NAME,
            ("Status", "string", 0, "Status of the job."),
            (
                "Completions",
                "string",
                0,
                "The completion status of the job.",
            ),
            (
                "Duration",
                "string",
                0,
                "Time required to complete the job.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        Resource::CronJobs => vec![
            NAME,
            ("Schedule", "string", 0, "The schedule in Cron format."),
            ("Timezone", "string", 0, "The time zone of the schedule."),
            (
                "Suspend",
                "boolean",
                0,
                "Whether the cron job is suspended.",
            ),
            ("Active", "integer", 0, "Number of currently running jobs."),
            (
                "Last Schedule",
                "string",
                0,
                "When the job was last successfully scheduled.",
            ),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        // The Gateway API CRD's printer columns.
        Resource::HttpRoutes => vec![
            NAME,
            ("Hostnames", "string", 0, "Hostnames the route matches."),
            AGE,
        ],
    }
}
